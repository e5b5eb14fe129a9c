"""The README's "Install into desktop QGIS" with no terminal step (issue 13): the forge's "Download ZIP" of the
repository (git archive of HEAD into <repository>-<branch>/, .gitattributes export-ignore applied) installed
by QGIS's own *Install from ZIP* into a fresh profile of desktop QGIS, then QGIS started again with that
profile; the same for the zip of scripts/build_zip.sh (folder hsigan/). Then (forge archive) a third start
with torch where hsigan:install_torch puts it, which classifies a raster. Real desktop QGIS on an Xvfb display
(tests/desktop_install.py). The archive holds committed files only: commit before running this test."""
import os
import shutil
import subprocess
import zipfile

import pytest

from conftest import ROOT
import desktop_install

pytestmark = [pytest.mark.qgis,
              pytest.mark.skipif(not (shutil.which("qgis") and shutil.which("Xvfb") and shutil.which("git")
                                      and os.path.exists(os.path.join(ROOT, ".git"))),
                                 reason="needs desktop QGIS, Xvfb (scripts/setup.sh installs both) and a git checkout")]

ALGORITHMS = ["hsigan:assess", "hsigan:augment", "hsigan:check", "hsigan:classify", "hsigan:export_onnx",
              "hsigan:install_torch", "hsigan:train", "hsigan:train_samples"]
SHIPPED = {"__init__.py", "plugin.py", "torch_prompt.py", "metadata.txt", "icon.svg", "LICENSE", "README.md",
           "algorithms", "hsigan_qgis", "models", "qgis_models", "sample_data", "docs"}
LEFT_OUT = {"tests", "bench", "scripts", "bin", ".ci", "Makefile", ".gitattributes", ".gitignore"}


def archive_of(kind, folder):
    if kind == "forge":
        return desktop_install.forge_archive(folder / "hsigan-qgis-main.zip")
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "build_zip.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return os.path.join(ROOT, done.stdout.strip().splitlines()[-1])


def check_contents(archive, folder):
    """One plugin folder with everything the plugin runs on, and no development files."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    assert all(n.startswith(f"{folder}/") for n in names), names[:5]
    # QGIS takes the folder of the first metadata.txt in sorted order: there must be one only
    assert [n for n in names if n.endswith("metadata.txt")] == [f"{folder}/metadata.txt"]
    shipped = {n.split("/")[1] for n in names}
    assert shipped == SHIPPED, shipped ^ SHIPPED
    assert not shipped & LEFT_OUT
    assert f"{folder}/docs/errors.md" in names and not any(n.startswith(f"{folder}/docs/img/") for n in names)
    committed = subprocess.run(["git", "-C", ROOT, "ls-files", "algorithms", "hsigan_qgis", "models", "qgis_models",
                                "sample_data"], capture_output=True, text=True, check=True).stdout.split()
    assert {f"{folder}/{path}" for path in committed} <= set(names)


@pytest.mark.parametrize("kind, folder", [("forge", "hsigan-qgis-main"), ("build_zip", "hsigan")])
def test_archive_installs_from_zip_into_a_fresh_desktop_qgis(kind, folder, tmp_path, small_model):
    archive = archive_of(kind, tmp_path)
    check_contents(archive, folder)
    torch_site = None
    if kind == "forge":
        import torch
        torch_site = os.path.dirname(os.path.dirname(torch.__file__))
    model, raster = small_model
    classify = {"INPUT": raster, "MODEL": model, "OUTPUT": str(tmp_path / "map.tif")}
    report = desktop_install.install(archive, str(tmp_path / "qgis"), torch_site=torch_site, classify=classify)
    plugins = tmp_path / "qgis" / "profiles" / "profiles" / "default" / "python" / "plugins"
    for step in ("install", "restart"):
        run = report[step]
        assert run["exit_code"] == 0 and "error" not in run and "check" in run, (step, run)
        assert run["dialogs"] == [] and run["python_errors"] == [], (step, run)
        assert run["installed_folders"] == [folder] and run["folder"] == folder, (step, run)
        assert run["module_file"] == str(plugins / folder / "__init__.py")
        assert run["enabled_setting"] is True
        assert run["algorithms"] == ALGORITHMS, (step, run["algorithms"])
        # QGIS's Python has no torch: hsigan:check says so, and the message bar offers the installer
        assert run["check"]["DEVICE"] == "none" and "torch=None" in run["check"]["REPORT"], run["check"]
        assert any("needs PyTorch" in text for text in run["message_bar"]), run["message_bar"]
        # the parts are imported inside the plugin package, whatever its folder is called
        assert run["top_level_parts"] == [] and f"{folder}.hsigan_qgis.config" in run["plugin_modules"]
        assert run["torch_modules_from"] == str(plugins / folder / "models" / "classifier.py")
    assert folder not in report["install"]["active_at_start"]  # a fresh profile: QGIS knew no HSI-GAN
    assert folder in report["restart"]["active_at_start"]  # the next start loads it from the profile
    if kind == "forge":  # torch installed (as hsigan:install_torch would): the plugin finds it and classifies
        run = report["torch"]
        assert run["exit_code"] == 0 and "error" not in run, run
        assert run["dialogs"] == [] and run["python_errors"] == [], run
        assert run["check"]["DEVICE"] == "cpu" and f"packages_folder={report['torch_folder']}" in run["check"]["REPORT"]
        assert run["classify"]["OUTPUT"] == classify["OUTPUT"] and os.path.getsize(classify["OUTPUT"]) > 0
        assert run["classifier_module"] == str(plugins / folder / "models" / "classifier.py")
        assert not any("needs PyTorch" in text for text in run["message_bar"])
