"""This checkout as the QGIS plugin package, for tests and scripts that drive the algorithms in-process:
QGIS imports the plugin folder as a package named after it (hsigan) and nothing of it is a top-level
module, so the algorithms are imported the same way here (hsigan.algorithms.provider)."""
import importlib.util
import os
import sys

NAME = "hsigan"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name=NAME):
    """Import the checkout's root folder as the package `name` (once); returns it."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "__init__.py"),
                                                  submodule_search_locations=[ROOT])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[name]
        raise
    return package


def provider():
    """A new HsiGanProvider of the plugin package (QGIS must be initialised)."""
    load()
    return importlib.import_module(f"{NAME}.algorithms.provider").HsiGanProvider()
