"""Class colours from the labels layer's QGIS style: a categorized renderer on the class field gives
{category value: '#rrggbb'} (JSON, the engine's CLASS_COLOURS); anything else gives '' (fixed palette)."""
import json


def categorized_colours(layer, class_field):
    renderer = layer.renderer() if layer is not None and hasattr(layer, "renderer") else None
    if renderer is None or renderer.type() != "categorizedSymbol":
        return ""
    if renderer.classAttribute().strip('"') != class_field:
        return ""
    colours = {}
    for category in renderer.categories():
        value = category.value()
        if value is None or str(value) == "" or category.symbol() is None:
            continue
        colour = category.symbol().color().name()
        colours[str(value)] = colour
        if category.label():
            colours.setdefault(category.label(), colour)
    return json.dumps(colours) if colours else ""
