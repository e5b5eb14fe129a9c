"""Outputs loaded into the project arrive styled: paletted classes with names and colours, or a grey
ramp for confidence."""
from qgis.core import (QgsContrastEnhancement, QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface,
                       QgsSingleBandGrayRenderer)
from qgis.PyQt.QtGui import QColor

_KEEP = {}  # post-processors must outlive the algorithm that made them


class _Style(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, kind, class_ids, class_names, class_colours):
        super().__init__()
        self.kind, self.ids, self.names, self.colours = kind, class_ids, class_names, class_colours

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        apply_style(layer, self.kind, self.ids, self.names, self.colours)


def apply_style(layer, kind, class_ids, class_names, class_colours):
    if kind == "classes":
        classes = [QgsPalettedRasterRenderer.Class(int(i), QColor(c), str(n))
                   for i, n, c in zip(class_ids, class_names, class_colours)]
        layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    else:
        renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), 1)
        enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(1))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(0.0)
        enhancement.setMaximumValue(1.0)
        renderer.setContrastEnhancement(enhancement)
        layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_on_load(context, path, kind, result):
    if not context.willLoadLayerOnCompletion(path):
        return
    processor = _Style(kind, result["class_ids"], result["class_names"], result["class_colours"])
    _KEEP[(path, kind)] = processor
    details = context.layerToLoadOnCompletionDetails(path)
    details.setPostProcessor(processor)
    if kind == "classes":
        details.name = "Classification"
    else:
        details.name = "Confidence"
