"""Class names and colours carried by classification rasters: GDAL colour table and category names
inside the file, and a QGIS .qml sidecar (paletted renderer) that QGIS picks up when loading it."""
from xml.sax.saxutils import quoteattr


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
