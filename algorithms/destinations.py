"""Optional raster outputs the way QGIS's native algorithms treat them: left empty, nothing is written,
nothing is returned and nothing is queued for loading.

The batch dialog passes an empty optional output as QgsProcessingOutputLayerDefinition("", project);
asking QGIS for its path (parameterAsOutputLayer) would queue '' for loading, which the dialog then reports
as "The following layers were not correctly generated. •"."""
from qgis.core import QgsProcessingOutputLayerDefinition, QgsProperty


def is_empty(value):
    """True for an optional destination the user left empty (None, '', or a definition with no sink)."""
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        sink = value.sink
        if sink.propertyType() == QgsProperty.StaticProperty:
            value = sink.staticValue()
        else:
            return False  # an expression: QGIS evaluates it
    return value is None or (isinstance(value, str) and not value.strip())


def optional_output_layer(algorithm, parameters, name, context):
    """The path to write an optional raster output to, or '' when it was left empty."""
    if is_empty(parameters.get(name)):
        return ""
    return algorithm.parameterAsOutputLayer(parameters, name, context) or ""


def drop_unwritten(context):
    """Forget any '' that something queued for loading (nothing was written under that name)."""
    layers = context.layersToLoadOnCompletion()
    if "" in layers:
        del layers[""]
        context.setLayersToLoadOnCompletion(layers)
