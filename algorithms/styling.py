"""Outputs loaded into the project arrive styled: paletted classes with names and colours, or a grey
ramp for confidence; named after the input raster and the model, the map above its confidence."""
import os

from qgis.core import (QgsContrastEnhancement, QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface,
                       QgsSingleBandGrayRenderer)
from qgis.PyQt.QtGui import QColor

_KEEP = {}  # post-processors must outlive the algorithm that made them


class _Style(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, kind, class_ids, class_names, class_colours, project=None, run=None):
        super().__init__()
        self.kind, self.ids, self.names, self.colours = kind, class_ids, class_names, class_colours
        self.project, self.run = project, run if run is not None else {}

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        apply_style(layer, self.kind, self.ids, self.names, self.colours)
        self.run[self.kind] = layer.id()
        if self.project is not None:
            map_above_confidence(self.project, self.run)


def map_above_confidence(project, run):
    """QGIS loads a run's outputs in the order of their paths; put the classification just above its
    confidence when both sit in the same group."""
    if "classes" not in run or "confidence" not in run:
        return
    root = project.layerTreeRoot()
    classes, confidence = root.findLayer(run["classes"]), root.findLayer(run["confidence"])
    if classes is None or confidence is None or classes.parent() is not confidence.parent():
        return
    group = classes.parent()
    children = group.children()
    above, below = children.index(classes), children.index(confidence)
    if above < below:
        return
    group.insertChildNode(below, classes.clone())  # the clone first: a layer that leaves the tree leaves
    group.removeChildNode(classes)                 # the project


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


def layer_name(raster_path, model_path, kind):
    """'salinas_a — classification (salinas)': which raster, what, which model."""
    raster = os.path.splitext(os.path.basename(raster_path.split("|")[0]))[0]
    model = os.path.splitext(os.path.basename(model_path))[0]
    what = "classification" if kind == "classes" else "confidence"
    return f"{raster} — {what} ({model})" if model else f"{raster} — {what}"


def style_on_load(context, path, kind, result, name=None, run=None):
    """Style (and name) the output at path when QGIS loads it. `run`: a dict shared by the outputs of one
    run, so that the map ends up above its confidence."""
    if not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    processor = _Style(kind, result.class_ids, result.class_names, result.class_colours,
                       details.project, run)
    _KEEP[(path, kind)] = processor
    details.setPostProcessor(processor)
    if name:
        details.name = name
        details.forceName = True  # also when "Prefer output filename for layer names" is on
    else:
        details.name = "Classification" if kind == "classes" else "Confidence"
