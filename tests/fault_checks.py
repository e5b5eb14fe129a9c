"""What every hostile / fault case asserts besides its message: the inputs are byte-identical afterwards
(sidecars included) and no temporary or partial file is left; plus runners for the CLI and qgis_process
that return (exit code, output). No tests here."""
import hashlib
import os
import re
import subprocess

from conftest import QGIS_PROCESS, ROOT

HSIGAN = os.path.join(ROOT, "bin", "hsigan")
TEMP = re.compile(r"(^\.hsigan-.*\.part$)|(\.part(\.|$))")


def _hash(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def temp_files(*folders):
    """Temporary or partial files (any '.part' name, this project's '.hsigan-*.part' folders) in folders."""
    found = []
    for folder in folders:
        for name in os.listdir(folder):
            if TEMP.search(name):
                found.append(os.path.join(str(folder), name))
    return found


class Unchanged:
    """Snapshot of input files (and their .aux.xml sidecars) and of the files in some folders.
    check(): every input byte-identical, no temp file, and nothing new in the folders but `allowed`."""

    def __init__(self, inputs, folders=(), sidecars=True):
        self.paths = [str(p) for p in inputs]
        if sidecars:
            self.paths += [p + ".aux.xml" for p in self.paths]
        self.hashes = {p: _hash(p) if os.path.exists(p) else None for p in self.paths}
        self.folders = [str(f) for f in folders]
        self.listings = {f: set(os.listdir(f)) for f in self.folders}

    def check(self, allowed=()):
        after = {p: _hash(p) if os.path.exists(p) else None for p in self.paths}
        changed = [p for p in self.paths if after[p] != self.hashes[p]]
        assert not changed, f"inputs changed: {changed}"
        assert not temp_files(*self.folders), temp_files(*self.folders)
        for folder in self.folders:
            new = set(os.listdir(folder)) - self.listings[folder] - set(allowed)
            assert not new, f"left in {folder}: {sorted(new)}"


def cli(*args, timeout=600, env=None):
    """bin/hsigan args; returns (exit code, stdout + stderr)."""
    done = subprocess.run([HSIGAN, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    return done.returncode, done.stdout + done.stderr


def qgis(algorithm, parameters, timeout=600):
    """bin/qgis-process run algorithm; returns (exit code, stdout + stderr)."""
    args = [f"{k}={v}" for k, v in parameters.items()]
    done = subprocess.run([QGIS_PROCESS, "run", algorithm, "--", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    return done.returncode, done.stdout + done.stderr


def one_error_line(text, job):
    """The CLI's error line (exactly one, no traceback)."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith(f"hsigan {job}:")]
    assert len(lines) == 1, text
    return lines[0]


