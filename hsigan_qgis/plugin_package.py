"""This checkout as the QGIS plugin package, for tests and scripts that drive the algorithms in-process:
QGIS imports the plugin folder as a package named after it (here: hsigan; any folder name works, see
tests/test_zip_install.py) and nothing of it is a top-level module, so the algorithms are imported the same
way here (hsigan.algorithms.provider).

The engine and the torch modules inside that package (hsigan.hsigan_qgis.*, hsigan.models.*) are the very
modules the tests import from the checkout (hsigan_qgis.*, models.*), not second copies: a test that
patches models.losses or catches hsigan_qgis.errors.InputError sees what the algorithms do. How the real
plugin imports its parts is tested in a fresh QGIS (tests/test_plugin_package.py)."""
import importlib
import importlib.abc
import importlib.util
import os
import sys

NAME = "hsigan"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = ("hsigan_qgis", "models")  # sub-packages shared with the checkout's top-level packages


class _Shared(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports hsigan.<shared>[.x] as the top-level module <shared>[.x]."""

    def __init__(self):
        self.specs = {}

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) >= 2 and parts[0] == NAME and parts[1] in SHARED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(spec.name[len(NAME) + 1:])
        self.specs[spec.name] = module.__spec__  # the import system sets the alias's next: put it back below
        return module

    def exec_module(self, module):  # already executed under its top-level name
        module.__spec__ = self.specs.pop(module.__spec__.name)


def load(name=NAME):
    """Import the checkout's root folder as the package `name` (once); returns it."""
    if name in sys.modules:
        return sys.modules[name]
    if not any(isinstance(finder, _Shared) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Shared())
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
