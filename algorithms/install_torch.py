"""hsigan:install_torch — PyTorch for QGIS's own Python, without a terminal (see hsigan_qgis/install_torch.py)."""
from qgis.core import QgsProcessingOutputBoolean, QgsProcessingOutputString, QgsProcessingParameterString

from .base import HsiGanAlgorithm
from ..hsigan_qgis.config import InstallTorchConfig

class InstallTorchAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "install_torch", "Install PyTorch", InstallTorchConfig
    GROUP = "Set-up"
    NEEDS = ()
    HELP = ("Installs PyTorch, which training and classification need, for the Python this QGIS runs, with pip, "
            "into a folder of HSI-GAN's own (Linux: ~/.local/share/hsigan/packages, Windows: "
            "%LOCALAPPDATA%\\hsigan\\packages, macOS: ~/Library/Application Support/hsigan/packages; delete it "
            "to uninstall). The system's Python and QGIS are not changed, so it works on Debian and Ubuntu "
            "(which refuse pip installs into the system's Python), with OSGeo4W and with QGIS.app, and needs no "
            "administrator rights. Needs an internet connection: the CPU build is a few hundred MB (a few "
            "minutes), the CUDA build several GB. The log shows pip's progress; a failed or cancelled install "
            "leaves the previous one as it was. Restart QGIS afterwards if HSI-GAN had said torch was missing. "
            "<b>Outputs</b>: FOLDER, TORCH_VERSION and CUDA (whether torch sees a GPU).")

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802
        return "setup"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_options()
        self.add_field(QgsProcessingParameterString, "torch_version", defaultValue="", optional=True)
        self.addOutput(QgsProcessingOutputString("FOLDER", "Packages folder"))
        self.addOutput(QgsProcessingOutputString("TORCH_VERSION", "Installed torch version"))
        self.addOutput(QgsProcessingOutputBoolean("CUDA", "CUDA available"))

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.install_torch import install

        values = self.option_values(parameters, context)
        version = (self.parameterAsString(parameters, "TORCH_VERSION", context) or "").strip()
        result = install(values["variant"], values["source"], version, engine_feedback)
        return {"FOLDER": result.folder, "TORCH_VERSION": result.torch_version, "CUDA": result.cuda_available}
