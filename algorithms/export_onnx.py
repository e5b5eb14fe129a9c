"""hsigan:export_onnx"""
from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterFileDestination

from .base import HsiGanAlgorithm
from ..hsigan_qgis.config import ExportOnnxConfig

class ExportOnnxAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "export_onnx", "Export model to ONNX", ExportOnnxConfig
    NEEDS = ("torch", "onnx", "numpy")
    HELP = ("Writes the classifier of a model from <i>Train classifier</i> as an ONNX segmentation model that "
            "other runtimes run without HSI-GAN or PyTorch, e.g. the Deepness QGIS plugin (model type "
            "Segmentor) or onnxruntime. Input: float32 (N, bands, TILE_SIZE, TILE_SIZE), each band "
            "standardised as (value - mean) / std with the model's mean and std; output: class probabilities "
            "(N, classes, TILE_SIZE, TILE_SIZE), channel k = the k-th class id. The file's metadata holds "
            "what Deepness reads (class names, tile size and overlap, standardisation) and the bands, "
            "wavelengths, normalisation, bad bands, class ids, names and colours and patch size for other "
            "runtimes. Tiles must overlap by twice the patch radius for the map to equal <i>Classify raster</i>'s "
            "(the metadata's tiles_overlap says so). <b>Outputs</b>: the .onnx file (OUTPUT).")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_field(QgsProcessingParameterFile, "model", extension="hsigan")
        self.add_options()
        self.add_field(QgsProcessingParameterFileDestination, "output", "ONNX model (*.onnx)")

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.export_onnx import export_onnx

        values = self.option_values(parameters, context)
        cfg = ExportOnnxConfig(model=self.parameterAsFile(parameters, "MODEL", context),
                               output=self.parameterAsFileOutput(parameters, "OUTPUT", context), **values)
        result = export_onnx(cfg, engine_feedback)
        return {"OUTPUT": result.output}
