"""Checks and atomic writing for output paths: a temporary file beside the target, renamed when
complete, removed on error or cancel."""
import contextlib
import os
import tempfile

from .errors import InputError


def check_output(path, parameter, inputs=()):
    if not path:
        raise InputError(parameter, "no output path given")
    target = os.path.realpath(path)
    for source in inputs:
        source = source.split("|")[0] if source else source
        if not source:
            continue
        same = os.path.realpath(source) == target
        if not same and os.path.exists(source) and os.path.exists(target):
            try:
                same = os.path.samefile(source, target)  # hard links
            except OSError:
                same = False
        if same:
            raise InputError(parameter, f"'{path}' is also an input; choose another output path so the input is kept")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise InputError(parameter, f"folder '{directory}' does not exist; create it or choose another path")
    if not os.access(directory, os.W_OK):
        raise InputError(parameter, f"folder '{directory}' is not writable; choose a folder you can write to")
    try:  # access() says yes to root and on some mounts; only creating a file tells
        handle, probe = tempfile.mkstemp(prefix=".hsigan-probe-", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise InputError(parameter, f"folder '{directory}' is not writable ({error.strerror}); "
                                    "choose a folder you can write to") from None
    if os.path.isdir(target):
        raise InputError(parameter, f"'{path}' is a folder; give a file name")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same extension); renames it over `path` on success.
    Sidecars GDAL writes next to it (.aux.xml, .ovr) follow it."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    handle, temporary = tempfile.mkstemp(prefix=f".{stem}-", suffix=f".part{ext}", dir=directory)
    os.close(handle)
    os.unlink(temporary)
    try:
        yield temporary
        for suffix in (".aux.xml", ".ovr", ".msk"):
            if os.path.exists(temporary + suffix):
                os.replace(temporary + suffix, os.path.abspath(path) + suffix)
        os.replace(temporary, path)
    finally:
        for leftover in [temporary] + [temporary + s for s in (".aux.xml", ".ovr", ".msk")]:
            if os.path.exists(leftover):
                os.unlink(leftover)


def write_text(path, text):
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)
