"""hsigan:install_torch: PyTorch for QGIS's own Python in a folder the plugin owns.

The real path (slow, ~1-2 min): a fresh QGIS profile and HOME, QGIS's own /usr/bin/python3 with no .venv on
the path, the installer run through qgis_process (pip takes the torch wheel this machine's pip settings
find), then torch imports inside qgis_process from the plugin's folder; a failing install keeps it."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

from hsigan_qgis import install_torch as torch_installer
from hsigan_qgis.errors import InputError

TORCH_VERSION = "2.13.0"  # the wheel on these machines (scripts/setup.sh)


def system_python_has_torch():
    """These tests need QGIS's Python without torch, as a new desktop user has it."""
    return subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}).returncode == 0


WITHOUT_TORCH = pytest.mark.skipif(not os.path.exists("/usr/bin/python3") or system_python_has_torch(),
                                   reason="needs Debian's /usr/bin/python3 without torch")


def test_pip_command_per_build_and_source():
    cpu = torch_installer.pip_command("/usr/bin/python3", "/t", "cpu")
    assert cpu[:6] == ["/usr/bin/python3", "-m", "pip", "install", "--target", "/t"] and "torch" in cpu
    if sys.platform != "darwin":
        assert cpu[cpu.index("--index-url") + 1] == torch_installer.CPU_INDEX
        cuda = torch_installer.pip_command("/usr/bin/python3", "/t", "cuda", version="2.13.0")
        assert cuda[cuda.index("--index-url") + 1] == torch_installer.CUDA_INDEX and "torch==2.13.0" in cuda
    own = torch_installer.pip_command("/usr/bin/python3", "/t", "cpu", source="pip")
    assert "--index-url" not in own  # pip's own settings (PyPI or pip.conf's mirror)
    with pytest.raises(InputError, match="TORCH_VERSION"):
        torch_installer.requirement("2.13; rm -rf /")
    assert torch_installer.choose_variant("cuda")[0] == ("cpu" if sys.platform == "darwin" else "cuda")


def test_packages_folder_is_per_user_and_python(monkeypatch, tmp_path):
    monkeypatch.delenv("HSIGAN_PACKAGES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    tag = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.platform.startswith("linux"):
        assert torch_installer.packages_dir() == str(tmp_path / "hsigan" / "packages" / tag)
    monkeypatch.setenv("HSIGAN_PACKAGES", str(tmp_path / "own"))
    assert torch_installer.packages_dir() == str(tmp_path / "own")
    assert torch_installer.add_to_path() is None  # absent folder: sys.path untouched
    (tmp_path / "own").mkdir()
    try:
        assert torch_installer.add_to_path() == str(tmp_path / "own") and sys.path[0] == str(tmp_path / "own")
    finally:
        sys.path.remove(str(tmp_path / "own"))


def test_finds_this_python():
    python = torch_installer.find_python()
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True).stdout.strip()
    assert version == str(tuple(sys.version_info[:2]))


def qgis_process(home, *args, timeout=600):
    """qgis_process.bin as desktop QGIS would run the plugin: a fresh profile under `home`, Debian's Python
    only (no PYTHONPATH, no venv), the plugin enabled from this checkout."""
    plugins, profile = home / "plugins", home / "profile" / "profiles" / "default" / "QGIS"
    if not plugins.exists():
        plugins.mkdir(parents=True)
        (plugins / "hsigan").symlink_to(ROOT)
        profile.mkdir(parents=True)
        (profile / "QGIS3.ini").write_text("[PythonPlugins]\nhsigan=true\n")
        (home / "runtime").mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "XDG_", "HSIGAN_"))}
    env.update(HOME=str(home), QGIS_PLUGINPATH=str(plugins), QGIS_CUSTOM_CONFIG_PATH=str(home / "profile"),
               QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(home / "runtime"),
               PATH="/usr/local/bin:/usr/bin:/bin", PYTHONWARNINGS="ignore::DeprecationWarning")
    return subprocess.run(["qgis_process.bin", "--json", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def results(done):
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    return json.loads(done.stdout)["results"]


@pytest.mark.qgis
@pytest.mark.slow
@WITHOUT_TORCH
@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.exists("/usr/bin/qgis_process.bin"),
                    reason="the Debian QGIS path")
def test_installer_in_a_fresh_profile_with_qgis_own_python(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    before = results(qgis_process(home, "run", "hsigan:check"))
    assert before["DEVICE"] == "none" and "torch=None" in before["REPORT"]  # QGIS's Python has no torch

    # enums by index in QGIS 3.22: VARIANT 1 = cpu, SOURCE 1 = pip (its settings find the wheel on disk)
    done = qgis_process(home, "run", "hsigan:install_torch", "--", "VARIANT=1", "SOURCE=1",
                        f"TORCH_VERSION={TORCH_VERSION}")
    installed = results(done)
    log = "\n".join(json.loads(done.stdout)["log"]["info"])
    assert "-m pip install --target" in log and "Successfully installed" in log  # pip's own lines, relayed
    assert "/usr/bin/python3" in log and "qgis_process" not in log.split("-m pip")[0].split("Running:")[1]
    folder = home / ".local" / "share" / "hsigan" / "packages" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert installed["FOLDER"] == str(folder) and installed["TORCH_VERSION"].startswith(TORCH_VERSION)
    assert (folder / "torch" / "__init__.py").exists() and not (folder / "numpy").exists()
    assert not (folder / "setuptools").exists() and not (folder / "pkg_resources").exists()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left

    after = results(qgis_process(home, "run", "hsigan:check"))  # a new QGIS process: the plugin adds the folder
    assert f"torch={installed['TORCH_VERSION']}" in after["REPORT"] and after["DEVICE"] == "cpu"
    assert f"packages_folder={folder}" in after["REPORT"]

    # A failing install (no such version) says so and keeps the working one.
    failed = qgis_process(home, "run", "hsigan:install_torch", "--", "VARIANT=1", "SOURCE=1",
                          "TORCH_VERSION=0.0.1", timeout=300)
    assert failed.returncode != 0 and "pip failed" in failed.stderr + failed.stdout
    assert "Traceback" not in failed.stderr + failed.stdout
    assert (folder / "torch" / "__init__.py").exists() and [p.name for p in folder.parent.iterdir()] == [folder.name]


PROMPT_SCRIPT = r'''
import os, sys
ROOT = sys.argv[1]
sys.path[:0] = [ROOT, "/usr/share/qgis/python/plugins"]
from qgis.core import QgsApplication
app = QgsApplication([], True)  # with a GUI (offscreen), as desktop QGIS
app.initQgis()
from processing.core.Processing import Processing
Processing.initialize()
from hsigan_qgis import plugin_package
provider = plugin_package.provider()
QgsApplication.processingRegistry().addProvider(provider)
from qgis.gui import QgsMessageBar
from qgis.PyQt.QtWidgets import QPushButton
from processing.gui.AlgorithmDialog import AlgorithmDialog
from hsigan import torch_prompt
bar = QgsMessageBar()
widget = torch_prompt.offer_installer(bar)
print("PUSHED", widget is not None and bar.currentItem() is widget)
print("BUTTONS", [b.text() for b in widget.findChildren(QPushButton)])
dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("hsigan:install_torch"), False, None)
print("DIALOG", dialog.windowTitle())
dialog.deleteLater()
'''


@pytest.mark.qgis
@WITHOUT_TORCH
def test_message_bar_offers_the_installer_when_torch_is_missing(tmp_path):
    """In QGIS's own Python (no torch there) with a GUI: the message bar shows the prompt with its button,
    and the installer's dialog builds. Where torch imports, no message."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(QT_QPA_PLATFORM="offscreen", HSIGAN_PACKAGES=str(tmp_path / "none"), HOME=str(tmp_path))
    done = subprocess.run(["/usr/bin/python3", "-c", PROMPT_SCRIPT, ROOT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PUSHED True" in done.stdout and "BUTTONS ['Install PyTorch…']" in done.stdout
    assert "DIALOG Install PyTorch" in done.stdout
    from hsigan_qgis import plugin_package
    plugin_package.load()
    from hsigan import torch_prompt  # in this process torch imports: nothing to offer
    assert torch_prompt.offer_installer(None) is None


def test_cancel_stops_pip_and_keeps_the_previous_folder(tmp_path):
    """Cancelled while pip works: pip is stopped, the previous folder is left as it was, nothing half-made."""
    from hsigan_qgis.errors import Cancelled
    from hsigan_qgis.feedback import Feedback

    class CancelOnPipOutput(Feedback):
        def __init__(self):
            self.lines = []

        def info(self, message):
            self.lines.append(message)

        def is_canceled(self):
            return any(line.startswith(("Collecting", "Processing", "Looking")) for line in self.lines)

    target = tmp_path / "packages"
    target.mkdir()
    (target / "previous.txt").write_text("kept")
    feedback = CancelOnPipOutput()
    with pytest.raises(Cancelled):
        torch_installer.install("cpu", "pip", TORCH_VERSION, feedback, target=str(target))
    assert any("-m pip install --target" in line for line in feedback.lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packages"]
    assert [p.name for p in target.iterdir()] == ["previous.txt"]
