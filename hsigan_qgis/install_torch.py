"""Installs PyTorch for the Python that QGIS runs, into a folder HSI-GAN owns (hsigan:install_torch).

Why a folder of our own: QGIS's Python is the system's on Linux (Debian 12+ and Ubuntu 23.04+ refuse
`pip install` there: PEP 668 "externally-managed-environment"), OSGeo4W's on Windows and the bundled one
in QGIS.app on macOS, where users rarely have a terminal or rights to change it. `pip install --target
FOLDER` writes only into FOLDER, which PEP 668 does not cover, needs no administrator, and leaves the
system alone; the plugin puts FOLDER on sys.path when it loads (add_to_path, from the plugin's
__init__), before anything imports torch.

FOLDER (packages_dir): HSIGAN_PACKAGES when set, else a per-user data folder, one per Python version
(wheels are built for one):
  Linux    $XDG_DATA_HOME or ~/.local/share  /hsigan/packages/python3.11
  Windows  %LOCALAPPDATA%                    \\hsigan\\packages\\python3.12
  macOS    ~/Library/Application Support     /hsigan/packages/python3.12
Deleting it uninstalls. It goes first on sys.path, so torch's pure-Python dependencies there (typing_extensions,
sympy, jinja2...) win over older system copies (Debian 12's sympy 1.11 is too old for torch 2.13); numpy is
not a dependency of torch and is never installed there, so QGIS's own numpy (which GDAL was built against)
stays the one used; setuptools, which pip brings along, is removed (it would shadow pkg_resources).

The interpreter (find_python): inside QGIS sys.executable is QGIS itself (qgis, qgis-bin.exe, QGIS.app's
binary), not Python, so `sys.executable -m pip` would start another QGIS. The real interpreter is looked
for where each platform puts it and accepted only when it reports the same Python version as QGIS's:
  Linux    sys.base_prefix/bin/python3.X, .../python3 (Debian: /usr/bin/python3), then python3.X/python3
           on PATH
  Windows  sys.exec_prefix\\python.exe or python3.exe (OSGeo4W: <root>\\apps\\Python3X\\python.exe; the
           standalone installer has the same layout)
  macOS    sys.exec_prefix/bin/python3.X or python3 (QGIS.app/Contents/Frameworks/...), then
           QGIS.app/Contents/MacOS/bin/python3

Which build (pip_command): CPU by default, from PyTorch's CPU wheel index (a few hundred MB; PyPI's
Linux torch is the CUDA build, several GB); CUDA when asked or, with 'auto', when an NVIDIA GPU is
found (nvidia-smi lists one), from PyTorch's CUDA index. PyTorch's index is the only index then (it
serves torch's dependencies too), so that pip fails rather than fall back to PyPI's CUDA build when
the index cannot be reached. macOS has no CUDA: PyPI's wheel (CPU and Apple
GPU). source='pip' instead uses pip's own settings (PyPI, or the mirror in the user's pip.conf).

Atomic: pip writes into a fresh folder beside FOLDER, which replaces FOLDER only when pip succeeded and
torch imports from it; a failed or cancelled install leaves the previous FOLDER as it was.
"""
import os
import re
import shutil
import subprocess
import sys
import time

from .errors import Cancelled, InputError
from .feedback import Feedback
from .results import InstallTorchResult

VARIANTS = ("auto", "cpu", "cuda")
SOURCES = ("pytorch", "pip")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu128"  # CUDA 12.8 builds: drivers >= 570 (2025)


def python_tag():
    return f"python{sys.version_info[0]}.{sys.version_info[1]}"


def packages_dir():
    """The folder HSI-GAN installs packages into, for the running Python version."""
    if os.environ.get("HSIGAN_PACKAGES"):
        return os.path.abspath(os.environ["HSIGAN_PACKAGES"])
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "hsigan", "packages", python_tag())


def add_to_path():
    """Put packages_dir() first on sys.path when it exists (called when the plugin loads). Returns it or None."""
    folder = packages_dir()
    if not os.path.isdir(folder):
        return None
    if folder not in sys.path:
        sys.path.insert(0, folder)
        import importlib
        importlib.invalidate_caches()
    return folder


def _candidates():
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if os.path.basename(sys.executable).lower().startswith("python"):
        yield sys.executable  # a plain Python (tests, the command line, a venv)
    if sys.platform.startswith("win"):
        for prefix in (sys.exec_prefix, sys.base_exec_prefix, sys.prefix):
            yield os.path.join(prefix, "python.exe")
            yield os.path.join(prefix, "python3.exe")
    else:
        for prefix in (sys.base_prefix, sys.exec_prefix, sys.prefix):
            yield os.path.join(prefix, "bin", f"python{version}")
            yield os.path.join(prefix, "bin", "python3")
        if sys.platform == "darwin":  # QGIS.app/Contents/MacOS/QGIS -> QGIS.app/Contents/MacOS/bin/python3
            yield os.path.join(os.path.dirname(sys.executable), "bin", "python3")
    for name in (f"python{version}", "python3", "python"):
        found = shutil.which(name)
        if found:
            yield found


def _version_of(python):
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60, **_no_window())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python():
    """The Python interpreter of the running Python's installation (not QGIS's binary): the first
    candidate that runs and reports this Python's version; InputError when none does."""
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    seen = set()
    for candidate in _candidates():
        candidate = os.path.abspath(candidate)
        if candidate in seen or not os.path.isfile(candidate):
            continue
        seen.add(candidate)
        if _version_of(candidate) == want:
            return candidate
    raise InputError("PYTHON", f"no Python {want} interpreter found beside this QGIS (looked in {sys.base_prefix} "
                               f"and on PATH); install torch by hand with that Python: "
                               f"python{want} -m pip install --target \"{packages_dir()}\" torch")


def has_pip(python):
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=120,
                          **_no_window()).returncode == 0


def nvidia_gpu():
    """Name of an NVIDIA GPU that nvidia-smi lists (the driver is installed), or None."""
    smi = shutil.which("nvidia-smi")
    if not smi and sys.platform.startswith("win"):
        smi = shutil.which(os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvidia-smi.exe"))
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, **_no_window())
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"GPU \d+: ([^(]+)", out.stdout or "")
    return match.group(1).strip() if out.returncode == 0 and match else None


def choose_variant(variant):
    """('cpu' or 'cuda', reason)."""
    if variant not in VARIANTS:
        raise InputError("VARIANT", f"'{variant}' is not one of {', '.join(VARIANTS)}")
    if sys.platform == "darwin":
        return "cpu", "macOS: PyTorch has no CUDA build (its wheel uses the CPU and Apple GPUs)"
    if variant != "auto":
        return variant, "as asked"
    gpu = nvidia_gpu()
    return ("cuda", f"NVIDIA GPU found: {gpu}") if gpu else ("cpu", "no NVIDIA GPU found (nvidia-smi lists none)")


def requirement(version):
    if not version:
        return "torch"
    if not re.fullmatch(r"\d+(\.\d+){0,2}", version):
        raise InputError("TORCH_VERSION", f"'{version}' is not a version number; give e.g. 2.13.0, or leave it "
                                          "empty for the newest torch for this Python")
    return f"torch=={version}"


def pip_command(python, target, variant, source="pytorch", version=""):
    """The pip command line that installs torch into `target`."""
    if source not in SOURCES:
        raise InputError("SOURCE", f"'{source}' is not one of {', '.join(SOURCES)}")
    command = [python, "-m", "pip", "install", "--target", target, "--no-input", "--disable-pip-version-check",
               "--no-warn-script-location", "--progress-bar", "off", requirement(version)]
    if source == "pytorch" and sys.platform != "darwin":
        # PyTorch's index alone (it also serves torch's dependencies): with PyPI as an extra index, an
        # unreachable PyTorch index would make pip take PyPI's torch, on Linux the multi-GB CUDA build.
        command += ["--index-url", CUDA_INDEX if variant == "cuda" else CPU_INDEX]
    return command


def _no_window():
    """No console window flashing up for each subprocess on Windows."""
    if sys.platform.startswith("win"):
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


def _progress_of(line, state):
    """A rough percentage from pip's output: resolving and downloading up to 70 %, installing to 95 %."""
    if line.startswith(("Collecting", "Processing", "Downloading", "Obtaining")):
        state["seen"] += 1
        return min(70.0, 5.0 + 65.0 * (1 - 0.85 ** state["seen"]))
    if line.startswith("Installing collected packages"):
        return 75.0
    if line.startswith("Successfully installed"):
        return 95.0
    return None


def install(variant="auto", source="pytorch", version="", feedback: Feedback = None, target=None,
            python=None) -> InstallTorchResult:
    """Install torch into `target` (packages_dir()) with pip; returns an InstallTorchResult. InputError on failure
    (pip's last lines in the message), Cancelled when cancelled; either way the previous folder stays."""
    feedback = feedback or Feedback()
    target = os.path.abspath(target or packages_dir())
    python = python or find_python()
    if not has_pip(python):
        hint = ("sudo apt install python3-pip" if sys.platform.startswith("linux") else
                "reinstall QGIS with its Python (OSGeo4W: the python3-pip package)")
        raise InputError("PYTHON", f"{python} has no pip module; install it ({hint}) and run this again")
    build, reason = choose_variant(variant)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fresh = f"{target}.installing-{os.getpid()}"
    shutil.rmtree(fresh, ignore_errors=True)
    command = pip_command(python, fresh, build, source, version)
    feedback.info(f"Installing PyTorch ({build} build: {reason}) into {target} with {python}")
    feedback.info("Running: " + " ".join(command))
    started = time.perf_counter()
    env = dict(os.environ, PYTHONNOUSERSITE="1", PIP_NO_INPUT="1", PIP_ROOT_USER_ACTION="ignore")
    env.pop("PYTHONPATH", None)  # pip runs in the interpreter's own environment, not QGIS's
    lines = []
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1, env=env, **_no_window())
        try:
            code = _follow(process, feedback, lines)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if code != 0:
            raise _pip_failure(code, lines, version)
        _drop_build_tools(fresh)
        torch_version, cuda = _check_import(python, fresh, env)
        _replace(fresh, target)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    add_to_path()
    seconds = time.perf_counter() - started
    megabytes = _size(target) / 1e6
    feedback.progress(100)
    feedback.info(f"PyTorch {torch_version} installed in {seconds:.0f} s ({megabytes:.0f} MB in {target}); "
                  f"CUDA available: {cuda}. Restart QGIS if HSI-GAN said torch was missing in this session.")
    return InstallTorchResult(folder=target, torch_version=torch_version, build=build, cuda_available=cuda,
                              python=python, seconds=seconds, megabytes=megabytes)


def _pip_failure(code, lines, version):
    """InputError naming the parameter to change, with pip's own error lines (shortened)."""
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:] or ["no output"]
    said = " ".join(errors)[-400:]
    if "No matching distribution" in said:
        parameter = "TORCH_VERSION" if version else "VARIANT"
        fix = ("give a version that exists for this Python, or leave TORCH_VERSION empty" if version else
               "PyTorch has no build for this Python or system; try the other build, or SOURCE pip")
    else:
        parameter, fix = "SOURCE", "check the internet connection (a proxy goes in pip.conf) or try the other SOURCE"
    if any("CERTIFICATE_VERIFY_FAILED" in line or "ssl" in line.lower() for line in lines):
        fix += "; pip could not verify the server's certificate (a company proxy: set 'cert' in pip.conf)"
    return InputError(parameter, f"pip failed (exit {code}): {said}. {fix[0].upper() + fix[1:]}; nothing was changed")


def _follow(process, feedback, lines):
    """Relay pip's lines as log and progress until it exits; cancel is honoured within half a second, also
    during a long silent download (a thread reads the pipe)."""
    import queue
    import threading

    received, state = queue.Queue(), {"seen": 0}

    def read():
        for text in process.stdout:
            received.put(text)
        received.put(None)

    threading.Thread(target=read, daemon=True, name="hsigan-pip-output").start()
    while True:
        if feedback.is_canceled():
            process.terminate()
            process.wait(timeout=60)
            raise Cancelled()
        try:
            text = received.get(timeout=0.5)
        except queue.Empty:
            continue
        if text is None:
            return process.wait()
        line = text.rstrip()
        if line:
            lines.append(line)
            feedback.info(line)
            percent = _progress_of(line, state)
            if percent is not None:
                feedback.progress(percent)


BUILD_TOOLS = ("setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence.pth")


def _drop_build_tools(folder):
    """Remove setuptools, which pip brings as a torch dependency (only torch's C++-extension builder uses
    it): first on sys.path, a newer copy would replace the pkg_resources that QGIS and its plugins import."""
    for name in os.listdir(folder):
        if name in BUILD_TOOLS or name.startswith("setuptools-"):
            path = os.path.join(folder, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def _check_import(python, folder, env):
    """(torch version, CUDA available) as the interpreter sees torch in `folder`; InputError if it cannot."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import torch; "
            "print(torch.__version__, torch.cuda.is_available())")
    out = subprocess.run([python, "-c", code, folder], capture_output=True, text=True, timeout=300, env=env,
                         **_no_window())
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError("VARIANT", f"pip installed torch but it does not import ({last[:300]}); nothing was "
                                    "changed. Try the CPU build, or see docs/errors.md")
    version, cuda = out.stdout.split()[:2]
    return version, cuda == "True"


def _replace(fresh, target):
    """Swap the fresh folder in; the old one is removed (or, when files in it are in use, as on Windows
    while QGIS holds its DLLs, left beside it and removed next time)."""
    old = f"{target}.old-{os.getpid()}"
    parent = os.path.dirname(target)
    for name in os.listdir(parent):  # leftovers of earlier runs
        if name.startswith(os.path.basename(target) + ".old-"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    try:
        if os.path.exists(target):
            os.replace(target, old)
        os.replace(fresh, target)
    except OSError as error:  # Windows: the old torch's DLLs are loaded by this QGIS
        if os.path.exists(old) and not os.path.exists(target):
            os.replace(old, target)
        raise InputError("VARIANT", f"the installed PyTorch is in use ({error.strerror}); restart QGIS and run "
                                    "Install PyTorch again before using HSI-GAN; nothing was changed") from None
    shutil.rmtree(old, ignore_errors=True)


def _size(folder):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def torch_available():
    """Whether torch can be imported, without importing it (cheap enough for plugin load)."""
    import importlib.util
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False
