"""The plugin as QGIS loads it: one package (hsigan) whose parts (hsigan_qgis, algorithms, models) are
imported relatively; nothing of it becomes a top-level module, nothing is added to sys.path, and another
plugin's `models` or `algorithms` package cannot shadow ours (issue 11 item 2)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_qgis_process

pytestmark = pytest.mark.qgis

LOAD_SCRIPT = r'''
import os, sys
plugins, packages = sys.argv[1], sys.argv[2]
sys.path[:0] = [plugins, "/usr/share/qgis/python/plugins"]  # QGIS puts its plugin folders on sys.path
os.environ["HSIGAN_PACKAGES"] = packages
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
from processing.core.Processing import Processing
Processing.initialize()
before = list(sys.path)
import hsigan  # what QGIS does: import the plugin folder by its name, then classFactory + initProcessing
plugin = hsigan.classFactory(None)
plugin.initProcessing()
assert QgsApplication.processingRegistry().algorithmById("hsigan:classify") is not None
import hsigan.hsigan_qgis.classify, hsigan.hsigan_qgis.gan, hsigan.hsigan_qgis.model_file
print("ADDED", [p for p in sys.path if p not in before])
print("TOP", sorted(m for m in ("hsigan_qgis", "models", "algorithms", "plugin", "torch_prompt") if m in sys.modules))
plugin.unload()
'''


@pytest.mark.parametrize("with_packages", [False, True])
def test_plugin_load_adds_nothing_to_sys_path(tmp_path, with_packages):
    """classFactory + initProcessing, as QGIS calls them: sys.path gains only the torch packages folder of
    hsigan:install_torch when it exists, and no part of the plugin is a top-level module."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    os.symlink(ROOT, plugins / "hsigan")
    packages = tmp_path / "torch-packages"
    if with_packages:
        packages.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    site = [p for p in sys.path if p.endswith("site-packages") and ".venv" in p]
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), PYTHONPATH=":".join(site))
    done = subprocess.run(["/usr/bin/python3", "-c", LOAD_SCRIPT, str(plugins), str(packages)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    expected = [str(packages)] if with_packages else []
    assert f"ADDED {expected!r}" in done.stdout, done.stdout
    assert "TOP []" in done.stdout, done.stdout


def test_plugin_runs_beside_other_models_and_algorithms_packages(small_model, tmp_path):
    """Another plugin's `models` and `algorithms` packages, first on PYTHONPATH and already imported when
    ours loads (a sitecustomize imports them): qgis_process still lists our algorithms and classifies with
    our torch modules (a plugin on sys.path importing `models.classifier` would find the other package)."""
    model, raster = small_model
    other = tmp_path / "other"
    for name in ("models", "algorithms"):
        (other / name).mkdir(parents=True)
        (other / name / "__init__.py").write_text("OWNER = 'another plugin'\n")
    (other / "sitecustomize.py").write_text(
        "import algorithms, models\n"
        "print('OTHER PACKAGES IMPORTED', models.OWNER, algorithms.OWNER, flush=True)\n")
    out = tmp_path / "map.tif"
    env_path = str(other) + os.pathsep + os.environ.get("PYTHONPATH", "")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path
    try:
        listed = run_qgis_process("list")
        done = run_qgis_process("run", "hsigan:classify", "--", f"INPUT={raster}", f"MODEL={model}", f"OUTPUT={out}")
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    assert "hsigan:classify" in listed.stdout, (listed.stdout + listed.stderr)[-3000:]
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert out.exists()
    assert "OTHER PACKAGES IMPORTED another plugin another plugin" in done.stdout + done.stderr
