"""QGIS plugin entry point. The plugin folder goes on sys.path so that the engine (hsigan_qgis) and the
torch modules (models) import by the same names inside QGIS as in tests and on the command line."""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# PyTorch installed by hsigan:install_torch lives in a folder of its own; on sys.path before anything imports torch.
from hsigan_qgis.torch_installer import add_to_path  # noqa: E402

add_to_path()


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import HsiGanPlugin
    return HsiGanPlugin(iface)
