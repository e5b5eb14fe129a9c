"""Checks and atomic writing for output paths.

Every output is written into a private temporary folder beside its target (`.hsigan-<pid>-<random>.part`)
under its final file name, so headers of multi-file formats name the final files and the temporary
name is never longer than the final one. When complete (and verified by the caller), every file of the
folder is moved beside the target, the main file last; on any error or cancel the folder is removed and
the previous output is kept. The folder holds a lock while in use: a later run removes folders of this
naming scheme, beside its own output, that are older than itself and no longer locked (left by a run
that was killed with SIGKILL or lost power)."""
import contextlib
import errno
import os
import re
import shutil
import tempfile
import time

from .errors import InputError

TEMP_PREFIX = ".hsigan-"
TEMP_SUFFIX = ".part"
TEMP_NAME = re.compile(r"^\.hsigan-\d+-[A-Za-z0-9_]+\.part$")
LOCK_NAME = ".hsigan-lock"
SIDECARS = (".aux.xml", ".ovr", ".msk")
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


def check_output(path, parameter, inputs=()):
    """Refuses an output path that is an input file (through links and VRTs, see input_files), lies in a
    missing or unwritable folder, or is a folder."""
    from .input_files import refuse_if_input
    if not path:
        raise InputError(parameter, "no output path given")
    refuse_if_input(path, parameter, inputs)
    target = os.path.realpath(path)
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


def check_name_fits(path, parameter, main=None):
    """Refuses a file name longer than its folder allows (a sidecar such as map.tif.aux.xml is longer
    than its map); main: the output path the user gave, when `path` is its sidecar."""
    name = os.path.basename(path)
    try:
        limit = os.pathconf(os.path.dirname(os.path.abspath(path)), "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > limit:
        given = os.path.basename(main or path)
        room = limit - (size - len(given.encode("utf-8", "surrogateescape")))
        raise InputError(parameter, f"the file name '{name[:40]}...' ({size} bytes) is longer than its folder allows "
                                    f"({limit}); give a name of at most {room} bytes")


def is_disk_full(error):
    return isinstance(error, OSError) and error.errno in DISK_FULL


def disk_full_error(path, parameter, detail=""):
    """The InputError for an output that could not be written completely."""
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free
        room = f"{free / 1e6:.1f} MB free there"
    except OSError:
        room = "free space unknown"
    return InputError(parameter, f"'{path}' could not be written completely: disk full or write error ({room}"
                                 f"{'; ' + detail if detail else ''}); free some space or choose another folder "
                                 "and run again; the previous file, if any, was kept")


def _lock(folder):
    """An open, exclusively locked file inside `folder` (None where flock does not exist)."""
    try:
        import fcntl
    except ImportError:
        return None
    handle = open(os.path.join(folder, LOCK_NAME), "w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _is_abandoned(folder, before):
    """True for a temporary folder of this scheme that no running process holds and that is older than
    `before` (time.time())."""
    try:
        if os.lstat(folder).st_mtime >= before or os.path.islink(folder):
            return False
    except OSError:
        return False
    try:
        import fcntl
    except ImportError:  # no flock (Windows): only folders a day old, whose files no process keeps open
        return os.lstat(folder).st_mtime < before - 86400
    try:
        with open(os.path.join(folder, LOCK_NAME), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
    except OSError:  # locked by a live run, or not ours
        return False


def remove_stale(directory, before=None):
    """Removes temporary folders of this naming scheme in `directory` left by killed runs; returns
    their names."""
    before = time.time() if before is None else before
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(directory, name)
        if name.startswith(f"{TEMP_PREFIX}{os.getpid()}-"):  # this process's own (on NFS flock cannot tell)
            continue
        if TEMP_NAME.match(name) and os.path.isdir(folder) and _is_abandoned(folder, before):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(name)
    return removed


def _fsync(path):
    """Flushes a file to disk: a delayed write error (full disk on NFS, quota) shows here, not after the
    rename."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _commit(folder, directory, name, parameter, inputs):
    from .input_files import input_files, same_file
    produced = sorted(n for n in os.listdir(folder) if n != LOCK_NAME)
    if name not in produced:
        raise InputError(parameter, f"no file '{name}' was written; choose another format (e.g. .tif)")
    protected = input_files(inputs) if inputs else []
    for entry in produced:
        destination = os.path.join(directory, entry)
        if any(same_file(destination, source) for source in protected):
            raise InputError(parameter, f"writing '{name}' would replace the input file '{destination}'; choose "
                                        "another output name so the input is kept")
        _fsync(os.path.join(folder, entry))
    for suffix in SIDECARS:  # a sidecar of the previous output would describe the old file
        old = os.path.join(directory, name + suffix)
        if name + suffix not in produced and os.path.isfile(old):
            os.unlink(old)
    with _signals_deferred():  # a multi-file set is moved whole: Ctrl+C or SIGTERM wait for the last rename
        for entry in sorted(produced, key=lambda n: n == name):  # the main file last
            os.replace(os.path.join(folder, entry), os.path.join(directory, entry))


@contextlib.contextmanager
def _signals_deferred():
    """Blocks SIGINT, SIGTERM and SIGHUP in this thread (POSIX); they are delivered when it ends."""
    import signal
    import threading
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    deferred = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, deferred)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def atomic_path(path, parameter="OUTPUT", inputs=()):
    """Yields a temporary path with the same file name as `path`, in a private folder beside it; moves
    what was written there beside `path` on success (the caller has closed and verified it). A full disk
    ends as an InputError naming `parameter`. `inputs`: input files no written file may replace."""
    directory, name = os.path.split(os.path.abspath(path))
    started = time.time()
    remove_stale(directory, started)
    try:
        folder = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=TEMP_SUFFIX, dir=directory)
    except OSError as error:
        if is_disk_full(error):
            raise disk_full_error(path, parameter, error.strerror) from None
        raise
    lock = None
    try:
        lock = _lock(folder)
        yield os.path.join(folder, name)
        _commit(folder, directory, name, parameter, inputs)
    except OSError as error:
        if is_disk_full(error):
            raise disk_full_error(path, parameter, error.strerror) from None
        raise
    finally:
        if lock is not None:
            lock.close()
        shutil.rmtree(folder, ignore_errors=True)


def write_text(path, text, parameter="OUTPUT"):
    with atomic_path(path, parameter) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)


def twin_path(path):
    """The JSON twin written beside an HTML report."""
    return os.path.splitext(path)[0] + ".json"


def report_files(path, parameter="OUTPUT_REPORT"):
    """[(parameter, file)] a report writes (HTML and its JSON twin), for the checks against the inputs."""
    if os.path.splitext(path)[1].lower() == ".json":
        raise InputError(parameter, f"'{path}' ends in .json, the name of the report's JSON twin; give the "
                                    "HTML report a .html name")
    return [(parameter, path), (parameter, twin_path(path))]


def check_job_files(files, inputs, report="", written=None):
    """Before any work, the files a job writes: files [(parameter, path)] and the HTML report each in a
    writable folder, replaceable and not an input file; then every file written (`written`, sidecars
    included; by default those files and the report with its JSON twin) against the inputs and each other."""
    from .replaceable import check_replaceable
    given = list(files) + ([("OUTPUT_REPORT", report)] if report else [])
    for parameter, path in given:
        check_output(path, parameter, inputs=inputs)
        check_replaceable(path, parameter)
    if written is None:
        written = list(files) + (report_files(report) if report else [])
    check_outputs(written, inputs)


def check_outputs(outputs, inputs):
    """outputs: [(parameter, path)] of every file a job writes (sidecars and twins included; the path the
    user gave first for each parameter), checked against every input file, against each other and
    against the folder's name length limit, before any work."""
    from .input_files import refuse_if_input, same_file
    mains = {}
    for parameter, path in outputs:
        mains.setdefault(parameter, path)  # the first path of each parameter is the one the user gave
        check_name_fits(path, parameter, mains[parameter])
        refuse_if_input(path, parameter, inputs)
    seen = []
    for parameter, path in outputs:
        for other_parameter, other in seen:
            if same_file(path, other):
                raise InputError(parameter, f"'{path}' would be written twice (also as {other_parameter}); give "
                                            "each output its own name")
        seen.append((parameter, path))
