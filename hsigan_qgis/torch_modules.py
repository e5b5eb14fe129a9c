"""The torch modules (the `models` package) from the engine, wherever the engine lives: inside QGIS the
three folders are parts of the plugin package (<plugin>.hsigan_qgis, <plugin>.models), so `models` is
imported relative to it and another plugin's `models` cannot shadow it; from a checkout (CLI, tests,
benchmarks) hsigan_qgis is a top-level package and so is `models`."""
import importlib


def torch_module(name):
    """The module models.<name> (e.g. "classifier") of this installation."""
    plugin = __package__.rpartition(".")[0]  # "" when hsigan_qgis is a top-level package
    return importlib.import_module(f"{plugin}.models.{name}" if plugin else f"models.{name}")
