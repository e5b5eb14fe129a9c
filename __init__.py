"""QGIS plugin entry point. QGIS imports this folder as a package named after the folder (`hsigan` from
scripts/build_zip.sh, `<repository>-<branch>` from a forge's "Download ZIP"; hyphens work); the engine
(hsigan_qgis), the algorithms and the torch modules (models) are parts of it, imported relatively, and
nothing of the plugin is put on sys.path, so another plugin's `models` or `algorithms` cannot clash with ours."""

# PyTorch installed by hsigan:install_torch lives in a folder of its own; on sys.path before anything imports torch.
from .hsigan_qgis.install_torch import add_to_path

add_to_path()


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import HsiGanPlugin
    return HsiGanPlugin(iface)
