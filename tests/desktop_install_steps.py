"""Runs inside desktop QGIS (`qgis --code`), started by tests/desktop_install.py. Step `install`: QGIS's own
*Plugins → Manage and Install Plugins → Install from ZIP* code (pyplugin_installer's installFromZipFile) on the
archive; step `restart`: a second start of QGIS with the same profile; step `torch`: a third start, with torch
where hsigan:install_torch puts it, that also runs hsigan:classify ($HSIGAN_DESKTOP_CLASSIFY). Each way it writes what QGIS then
holds (installed folders, active plugins, the provider's algorithms, hsigan:check's result, modal dialogs
and Python errors) as JSON to $HSIGAN_DESKTOP_REPORT and quits QGIS.

QGIS runs this file with exec(), so it has no __file__ and is not imported as a module."""
import importlib.util
import json
import os
import sys
import traceback

from qgis.core import Qgis, QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QMessageBox

import qgis.utils

report = {"step": os.environ["HSIGAN_DESKTOP_STEP"], "dialogs": [], "python_errors": []}


def close_modal_dialogs():
    """A modal dialog (an error box, QGIS's obsolete-plugin question) would wait for a click forever: note
    its text and close it."""
    widget = QApplication.activeModalWidget()
    if widget is not None:
        text = widget.text() if isinstance(widget, QMessageBox) else ""
        report["dialogs"].append(f"{widget.windowTitle()}: {text}")
        print(f"modal dialog closed: {report['dialogs'][-1]}", file=sys.stderr, flush=True)
        widget.close()


def note_python_error(message, tag, level):
    if level >= Qgis.Warning and tag in ("Python error", "Python warning", "Plugins"):
        report["python_errors"].append(f"{tag}: {message[:2000]}")


def installed_plugin():
    """(folder, module) of the plugin that provides `hsigan`, or (None, None)."""
    for name in qgis.utils.active_plugins:
        module = sys.modules.get(name)
        if module is not None and os.path.exists(os.path.join(os.path.dirname(module.__file__), "hsigan_qgis")):
            return name, module
    return None, None


def inspect():
    home = getattr(qgis.utils, "HOME_PLUGIN_PATH", None) or qgis.utils.home_plugin_path  # the name in 3.40 / 3.22
    report["home_plugin_path"] = home
    report["installed_folders"] = sorted(os.listdir(home)) if os.path.isdir(home) else []
    report["active_plugins"] = list(qgis.utils.active_plugins)
    folder, module = installed_plugin()
    report["folder"] = folder
    provider = QgsApplication.processingRegistry().providerById("hsigan")
    report["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
    if folder is None:
        return
    report["module_file"] = module.__file__
    report["enabled_setting"] = QgsSettings().value(f"PythonPlugins/{folder}", False, bool)
    report["plugin_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == folder)
    report["top_level_parts"] = sorted(m for m in ("hsigan_qgis", "models", "algorithms", "plugin", "torch_prompt")
                                       if m in sys.modules)
    # where the engine finds the torch modules (hsigan_qgis/torch_modules.py), without importing torch
    engine = sys.modules[f"{folder}.hsigan_qgis.torch_modules"] if f"{folder}.hsigan_qgis.torch_modules" in sys.modules \
        else importlib.import_module(f"{folder}.hsigan_qgis.torch_modules")
    plugin = engine.__package__.rpartition(".")[0]
    report["torch_modules_from"] = importlib.util.find_spec(f"{plugin}.models.classifier").origin
    bar = qgis.utils.iface.messageBar()
    report["message_bar"] = [item.text() for item in bar.items()]
    import processing
    results = processing.run("hsigan:check", {})
    report["check"] = {key: str(value) for key, value in results.items()}
    if os.environ.get("HSIGAN_DESKTOP_CLASSIFY"):
        results = processing.run("hsigan:classify", json.loads(os.environ["HSIGAN_DESKTOP_CLASSIFY"]))
        report["classify"] = {key: str(value) for key, value in results.items()}
        report["classifier_module"] = sys.modules[f"{folder}.models.classifier"].__file__


def run():
    QgsApplication.messageLog().messageReceived.connect(note_python_error)
    try:
        report["active_at_start"] = list(qgis.utils.active_plugins)
        if report["step"] == "install":
            import pyplugin_installer
            pyplugin_installer.instance().installFromZipFile(os.environ["HSIGAN_DESKTOP_ZIP"])
        inspect()
    except Exception:
        report["error"] = traceback.format_exc()
    with open(os.environ["HSIGAN_DESKTOP_REPORT"] + ".part", "w") as out:
        json.dump(report, out, indent=1)
    os.replace(os.environ["HSIGAN_DESKTOP_REPORT"] + ".part", os.environ["HSIGAN_DESKTOP_REPORT"])
    # QGIS 3.40's first start fetches a font in a background task (no network here): cancel the tasks, or
    # quitting asks whether to, then quit as a user does (QGIS writes its settings).
    QgsApplication.taskManager().cancelAll()
    quit_when_no_tasks(60)


def quit_when_no_tasks(tries):
    if QgsApplication.taskManager().countActiveTasks() and tries:
        QTimer.singleShot(500, lambda: quit_when_no_tasks(tries - 1))
    else:
        qgis.utils.iface.actionExit().trigger()


watchdog = QTimer(QgsApplication.instance())  # owned by QGIS: outlives this exec()
watchdog.timeout.connect(close_modal_dialogs)
watchdog.start(500)
QTimer.singleShot(0, run)
