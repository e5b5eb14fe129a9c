"""What every hostile / bad-input case must show besides its message: every input byte-identical
afterwards and nothing new left in the output folder (no output, no hidden temp or .part file). Also the
CLI run in-process, for the exit status and the one-line message. No tests here."""
import contextlib
import io
import os

from errors_helpers import digest


def _new_files(folder, before):
    """Names added to `folder` since `before`, less the .aux.xml QGIS writes beside rasters it opens."""
    return sorted(n for n in set(os.listdir(folder)) - before if not (n.endswith(".aux.xml") and n[:-8] in before))


@contextlib.contextmanager
def untouched(folder, *inputs):
    """Asserts, after the block, that every file in `inputs` is byte-identical (and still there or still
    absent) and that `folder` holds no new file, hidden ones included."""
    folder = str(folder)
    hashes = digest(*inputs)
    before = set(os.listdir(folder))
    yield
    assert digest(*inputs) == hashes, "an input was modified"
    assert not _new_files(folder, before), _new_files(folder, before)


def cli(*argv):
    """(exit status, stderr) of `hsigan argv...` run in-process (argparse's own refusals included)."""
    from hsigan_qgis.cli import main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()


def cli_fails(must_name, *argv, folder=None, inputs=(), code=2):
    """`hsigan argv...` must exit with `code`, its last stderr line naming `must_name` (one line, no
    traceback), leaving `folder` and `inputs` untouched. Returns that line."""
    with untouched(folder, *inputs) if folder else contextlib.nullcontext():
        status, text = cli(*argv, "--quiet")
    line = text.strip().splitlines()[-1] if text.strip() else ""
    assert status == code, text
    assert must_name in line, text
    assert "Traceback" not in text, text
    return line
