"""Class names and colours: chosen (the palette, CLASS_COLOURS, CLASS_NAMES) and carried by classification
rasters (GDAL colour table and category names inside the file, and a QGIS .qml sidecar, paletted renderer,
that QGIS picks up when loading it)."""
import json
from xml.sax.saxutils import quoteattr

from .errors import InputError


def hex_to_rgba(colour):
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4)) + (255,)


def paletted_qml(class_ids, class_names, class_colours):
    entries = "\n".join(
        f'        <paletteEntry value="{cid}" color="{colour}" alpha="255" label={quoteattr(str(name))}/>'
        for cid, name, colour in zip(class_ids, class_names, class_colours))
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
</qgis>
"""


def grey_qml(minimum=0.0, maximum=1.0):
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandgray" grayBand="1" gradient="BlackToWhite" opacity="1" alphaBand="-1">
      <contrastEnhancement>
        <minValue>{minimum}</minValue>
        <maxValue>{maximum}</maxValue>
        <algorithm>StretchToMinimumMaximum</algorithm>
      </contrastEnhancement>
    </rasterrenderer>
  </pipe>
</qgis>
"""


def qml_path(raster_path):
    import os
    return os.path.splitext(raster_path)[0] + ".qml"


def write_class_table(path, class_ids, class_names, class_colours):
    """Category names and a raster attribute table (value, class, red, green, blue) for band 1.
    For GeoTIFF, GDAL keeps both in the .aux.xml beside the file. False when it could not be written:
    GDAL's Python bindings are missing (rasterio alone cannot write attribute tables) or GDAL cannot open
    the file."""
    try:
        from osgeo import gdal
    except ImportError:
        return False
    dataset = gdal.Open(path)
    if dataset is None:
        return False
    band = dataset.GetRasterBand(1)
    names = [""] * (max(class_ids) + 1)
    for cid, name in zip(class_ids, class_names):
        names[cid] = str(name)
    band.SetCategoryNames(names)
    table = gdal.RasterAttributeTable()
    table.CreateColumn("value", gdal.GFT_Integer, gdal.GFU_MinMax)
    table.CreateColumn("class", gdal.GFT_String, gdal.GFU_Name)
    for column, usage in (("red", gdal.GFU_Red), ("green", gdal.GFU_Green), ("blue", gdal.GFU_Blue)):
        table.CreateColumn(column, gdal.GFT_Integer, usage)
    table.SetRowCount(len(class_ids))
    for row, (cid, name, colour) in enumerate(zip(class_ids, class_names, class_colours)):
        table.SetValueAsInt(row, 0, int(cid))
        table.SetValueAsString(row, 1, str(name))
        for column, value in enumerate(hex_to_rgba(colour)[:3], start=2):
            table.SetValueAsInt(row, column, value)
    band.SetDefaultRAT(table)
    dataset = None
    return True


def read_class_table(path):
    """{class id: name} from a classification raster's attribute table or category names ({} if none)."""
    from osgeo import gdal
    dataset = gdal.Open(path)
    if dataset is None:
        return {}
    band = dataset.GetRasterBand(1)
    table = band.GetDefaultRAT()
    if table is not None and table.GetRowCount():
        columns = {table.GetNameOfCol(i).lower(): i for i in range(table.GetColumnCount())}
        if "value" in columns and "class" in columns:
            return {table.GetValueAsInt(r, columns["value"]): table.GetValueAsString(r, columns["class"])
                    for r in range(table.GetRowCount())}
    names = band.GetCategoryNames() or []
    return {i: n for i, n in enumerate(names) if n}


# A qualitative palette (Tableau 20 reordered) so neighbouring class ids differ clearly.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
           "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]


def default_colours(n):
    """n distinct '#rrggbb' colours: the palette, then golden-angle hues beyond it."""
    import colorsys
    colours = PALETTE[:n]
    for i in range(len(colours), n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1, 0.65, 0.9)
        colours.append("#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255)))
    return colours


def resolve_colours(spec, classes, fallback=None):
    """Class colours: those named in `spec` (JSON {class id or name: '#rrggbb'}, e.g. from the labels
    layer's categorized style), then `fallback` (a list in class order), then the fixed palette."""
    from .labels import normalise_name

    colours = list(fallback) if fallback and len(fallback) == len(classes.ids) else default_colours(len(classes.ids))
    if not spec:
        return colours
    given = parse_colours(spec)
    by_key = {normalise_name(str(k)): str(v) for k, v in given.items()}
    for k, (cid, name) in enumerate(zip(classes.ids, classes.names)):
        colour = by_key.get(normalise_name(str(cid))) or by_key.get(normalise_name(str(name)))
        if colour and len(colour) == 7 and colour.startswith("#"):
            colours[k] = colour.lower()
    return colours


def resolve_names(spec, classes):
    """Class names from `spec` (JSON {class id: name}, e.g. from a class name field) for the classes of an
    integer class field, whose names are otherwise their ids; other classes keep their names."""
    try:
        given = json.loads(spec) if isinstance(spec, str) else dict(spec)
        if not isinstance(given, dict):
            raise ValueError("not an object")
    except ValueError as error:
        raise InputError("CLASS_NAMES", f"not a JSON object of class id: name ({error}); e.g. {{\"1\": \"water\"}}")
    named = {str(k).strip(): " ".join(str(v).split()) for k, v in given.items() if str(v).strip()}
    return [named.get(str(cid), name) if name == str(cid) else name for cid, name in zip(classes.ids, classes.names)]


def parse_colours(spec):
    """{class id or name: '#rrggbb'} from CLASS_COLOURS (JSON text or a dict); InputError naming
    CLASS_COLOURS for anything else, so a typo is refused before training rather than after it."""
    example = 'e.g. {"water": "#0000ff", "3": "#00ff00"}'
    try:
        given = json.loads(spec) if isinstance(spec, str) else dict(spec)
    except (ValueError, TypeError) as error:
        raise InputError("CLASS_COLOURS", f"not valid JSON ({error}); give an object of class: colour, {example}") from None
    if not isinstance(given, dict):
        raise InputError("CLASS_COLOURS", f"not a JSON object of class: colour; {example}")
    for key, colour in given.items():
        text = colour if isinstance(colour, str) else ""
        if not (len(text) == 7 and text[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in text[1:])):
            raise InputError("CLASS_COLOURS", f"the colour {colour!r} of '{key}' is not '#rrggbb'; {example}")
    return given
