"""The HSI-GAN Processing provider: lists the algorithms; ids hsigan:<name> are public API."""
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .assess import AssessAlgorithm
from .augment import AugmentAlgorithm
from .check import CheckAlgorithm
from .classify import ClassifyAlgorithm
from .export_onnx import ExportOnnxAlgorithm
from .install_torch import InstallTorchAlgorithm
from .train import TrainAlgorithm, TrainFromSamplesAlgorithm

ALGORITHMS = [AugmentAlgorithm, TrainAlgorithm, TrainFromSamplesAlgorithm, ClassifyAlgorithm, AssessAlgorithm,
              CheckAlgorithm, ExportOnnxAlgorithm, InstallTorchAlgorithm]


class HsiGanProvider(QgsProcessingProvider):
    def id(self):
        return "hsigan"

    def name(self):
        return "HSI-GAN"

    def longName(self):  # noqa: N802
        from ..hsigan_qgis import __version__
        return f"HSI-GAN {__version__} (hyperspectral classification with GANs)"

    def icon(self):
        path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icon.svg")
        return QIcon(path) if os.path.exists(path) else super().icon()

    def loadAlgorithms(self):  # noqa: N802
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
