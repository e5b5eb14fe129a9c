"""Class colours from the labels layer's QGIS style: a categorized renderer on the class field gives
{category value: '#rrggbb'} (JSON, the engine's CLASS_COLOURS); anything else gives '' (fixed palette).
Class names for integer class fields: from a name field or that style's labels (the engine's CLASS_NAMES)."""
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


def class_names(layer, class_field, name_field=""):
    """Names for the classes of an integer class field, as JSON {class id: name} (the engine's CLASS_NAMES),
    or '': from the name field when one is given (the first name seen per id), otherwise from the labels of
    a categorized style on the class field (as the layer's legend shows them)."""
    if layer is None or not class_field or layer.fields().indexOf(class_field) < 0:
        return ""
    if not layer.fields().field(class_field).isNumeric():
        return ""  # a text class field: its values are the names
    names = {}
    if name_field and layer.fields().indexOf(name_field) >= 0:
        for feature in layer.getFeatures():
            cid, name = feature[class_field], feature[name_field]
            if cid is None or name is None or not str(name).strip() or str(cid) == "NULL":
                continue
            names.setdefault(str(int(cid)), str(name))
    renderer = layer.renderer() if hasattr(layer, "renderer") else None
    if not names and renderer is not None and renderer.type() == "categorizedSymbol" \
            and renderer.classAttribute().strip('"') == class_field:
        for category in renderer.categories():
            value, label = category.value(), category.label()
            if value is None or str(value) == "" or not label:
                continue
            try:
                cid = str(int(value))
            except (TypeError, ValueError):
                continue
            if label.strip() != cid:
                names[cid] = label
    return json.dumps(names) if names else ""


def refuse_feature_id(layer, field, parameter="CLASS_FIELD"):
    """QGIS's field lists start with a GeoPackage's feature id ('fid'), which a required field widget
    preselects; it numbers features, it holds no classes. Say so, and list the fields that might."""
    from ..hsigan_qgis.errors import InputError
    if layer is None or not field:
        return
    index = layer.fields().indexOf(field)
    if index >= 0 and index in layer.primaryKeyAttributes():
        others = [f.name() for i, f in enumerate(layer.fields()) if i not in layer.primaryKeyAttributes()]
        raise InputError(parameter, f"'{field}' is the layer's feature id, not a class; choose the field that "
                                    f"holds the classes: one of {others}")
