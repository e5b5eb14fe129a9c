"""Installs a plugin archive into desktop QGIS as a user without a terminal does: QGIS's own *Install from
ZIP* in a fresh profile (and a fresh HOME, QGIS's own Python, no venv), then starts QGIS again with that
profile. What QGIS does inside is tests/desktop_install_steps.py. Desktop QGIS 3.22 crashes on Qt's
offscreen platform (in QgsClipboard, while its main window is built), so it runs on a private Xvfb display.

    python3 tests/desktop_install.py ARCHIVE.zip WORK_DIR     # prints {"install": {...}, "restart": {...}}
    python3 tests/desktop_install.py --forge-archive ZIP      # writes the forge's "Download ZIP" of HEAD

With a torch folder and a classify job, a third start (step `torch`) finds torch where hsigan:install_torch
puts it (~/.local/share/hsigan/packages/pythonX.Y; here links to the venv's torch and the packages it needs)
and runs hsigan:classify from the installed plugin.

Used by tests/test_zip_install.py (QGIS 3.22) and scripts/qgis340/checks.sh (QGIS 3.40)."""
import contextlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STEPS = os.path.join(HERE, "desktop_install_steps.py")
FORGE_PREFIX = "hsigan-qgis-main/"  # what a forge names the folder: <repository>-<branch>/ (hyphens included)


def forge_archive(target, prefix=FORGE_PREFIX, root=ROOT):
    """The forge's "Download ZIP" of the committed HEAD (git archive, .gitattributes export-ignore applied)."""
    subprocess.run(["git", "-C", root, "archive", "--format=zip", f"--prefix={prefix}", "-o", str(target), "HEAD"],
                   check=True)
    return str(target)


@contextlib.contextmanager
def xvfb_display():
    """A private X display (Xvfb picks a free number and reports it on a pipe once it accepts clients)."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def link_torch(home, site_packages):
    """Where hsigan:install_torch installs torch, links to torch and its requirements from site_packages
    (those found elsewhere, e.g. Debian's, QGIS's Python sees already). Returns the folder."""
    from importlib.metadata import distribution, PackageNotFoundError
    from packaging.requirements import Requirement
    folder = os.path.join(home, ".local", "share", "hsigan", "packages", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    os.makedirs(folder, exist_ok=True)
    todo, seen = ["torch"], set()
    while todo:
        name = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        todo += [Requirement(r).name for r in dist.requires or () if not Requirement(r).marker
                 or Requirement(r).marker.evaluate({"extra": ""})]
        top = {f.parts[0] for f in dist.files or () if ".." not in f.parts and f.parts[0] != "__pycache__"}
        for entry in top:
            source = os.path.join(site_packages, entry)
            if os.path.exists(source) and not os.path.exists(os.path.join(folder, entry)):
                os.symlink(source, os.path.join(folder, entry))
    return folder


def run_qgis(step, archive, work, display, timeout=180, extra_env=None):
    """One desktop QGIS session (`qgis --code`) on `display` with the profile in work/profiles; its report."""
    home, runtime = os.path.join(work, "home"), os.path.join(work, "runtime")
    os.makedirs(home, exist_ok=True)
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    report = os.path.join(work, f"{step}.json")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "DISPLAY": display,
           "QT_QPA_PLATFORM": "xcb", "XDG_RUNTIME_DIR": runtime, "HSIGAN_DESKTOP_STEP": step,
           "HSIGAN_DESKTOP_ZIP": os.path.abspath(archive), "HSIGAN_DESKTOP_REPORT": report, **(extra_env or {})}
    command = ["qgis", "--nologo", "--noversioncheck", "--profiles-path", os.path.join(work, "profiles"),
               "--code", STEPS]
    try:
        done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, timeout=timeout)
        result = {"exit_code": done.returncode, "log": (done.stdout + done.stderr)[-4000:]}
    except subprocess.TimeoutExpired as stuck:
        output = (stuck.stdout or b"") + (stuck.stderr or b"")
        result = {"exit_code": f"killed after {timeout} s", "log": output.decode(errors="replace")[-4000:]}
    if os.path.exists(report):
        with open(report) as f:
            result.update(json.load(f))
    return result


def install(archive, work, timeout=180, torch_site=None, classify=None):
    """Install from ZIP, then a restart; {"install": report, "restart": report}. With torch_site (a
    site-packages folder holding torch) and classify (hsigan:classify's parameters), a third start: "torch"."""
    with xvfb_display() as display:
        reports = {step: run_qgis(step, archive, work, display, timeout) for step in ("install", "restart")}
        if torch_site:
            reports["torch_folder"] = link_torch(os.path.join(work, "home"), torch_site)
            reports["torch"] = run_qgis("torch", archive, work, display, timeout,
                                        {"HSIGAN_DESKTOP_CLASSIFY": json.dumps(classify)})
        return reports


if __name__ == "__main__":
    if sys.argv[1] == "--forge-archive":
        print(forge_archive(sys.argv[2]))
    else:
        print(json.dumps(install(sys.argv[1], sys.argv[2]), indent=1))
