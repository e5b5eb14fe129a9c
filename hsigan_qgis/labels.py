"""Vector labels onto the raster grid: read polygons/points with OGR, map the class attribute to class
ids, reproject to the raster's CRS and rasterise with rasterio (pixel centre or all-touched rule).

Class ids: an integer field keeps its codes (0 and negatives are refused: 0 is the map's nodata);
a text field is matched case- and whitespace-insensitively and numbered 1..K in sorted order.
"""
import contextlib
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass
class ClassTable:
    ids: list      # class ids written into maps, in model output order
    names: list    # display names, same order

    def index_of(self):
        return {cid: i for i, cid in enumerate(self.ids)}


@dataclass
class LabelGrid:
    """Class index per pixel (-1 = unlabelled) over a window of the raster."""
    index: np.ndarray       # (h, w) int32, index into ClassTable.ids
    row: int                # window origin in the raster
    col: int
    classes: ClassTable
    skipped_null: int       # features whose class value was NULL or empty


def split_layer_uri(uri: str):
    """'file.gpkg|layername=x' (QGIS style) -> ('file.gpkg', 'x')."""
    path, _, rest = uri.partition("|")
    layer = None
    for part in rest.split("|"):
        if part.startswith("layername="):
            layer = part[len("layername="):]
    return path, layer


def _open_layer(uri: str, parameter: str):
    from osgeo import ogr

    path, layer_name = split_layer_uri(uri)
    try:
        source = ogr.Open(path, 0)  # read-only
    except RuntimeError:  # when something enabled GDAL exceptions
        source = None
    if source is None or source.GetLayerCount() < 1:
        raise InputError(parameter, f"cannot open vector '{path}' (missing, damaged or not a vector format); "
                                    "give a GDAL/OGR-readable file such as a GeoPackage")
    layer = source.GetLayerByName(layer_name) if layer_name else source.GetLayer(0)
    if layer is None:
        raise InputError(parameter, f"vector '{path}' has no layer '{layer_name or 0}'")
    return source, layer


def normalise_name(value) -> str:
    return " ".join(str(value).split()).casefold()


def read_features(uri: str, class_field: str, parameter: str = "LABELS", field_parameter: str = "CLASS_FIELD"):
    """[(ogr geometry, raw class value)], the layer's SRS (or None), the count of NULL classes and whether
    the field is numeric. A damaged layer gives an InputError naming `parameter`, never an OGR fault."""
    try:
        return _read_features(uri, class_field, parameter, field_parameter)
    except InputError:
        raise
    except Exception as error:  # OGR faults on a damaged file (with GDAL exceptions on, or odd values)
        raise InputError(parameter, f"cannot read the features of '{uri}' ({type(error).__name__}: "
                                    f"{str(error)[:160]}); repair the layer (e.g. Vector > Geometry Tools > "
                                    "Fix Geometries) or export it again") from None


def _usable(geometry):
    """A non-empty geometry with finite coordinates, or None."""
    if geometry is None or geometry.IsEmpty():
        return None
    envelope = geometry.GetEnvelope()
    if not all(np.isfinite(envelope)):
        return None
    return geometry


def _read_features(uri, class_field, parameter, field_parameter):
    source, layer = _open_layer(uri, parameter)
    definition = layer.GetLayerDefn()
    names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    if not class_field:
        raise InputError(field_parameter, f"no class field given; choose one of {names}")
    if class_field not in names:
        raise InputError(field_parameter, f"field '{class_field}' is not in '{uri}'; it has {names}")
    from osgeo import ogr
    field_def = definition.GetFieldDefn(names.index(class_field))
    is_int = field_def.GetType() in (ogr.OFTInteger, ogr.OFTInteger64)
    is_real = field_def.GetType() == ogr.OFTReal
    if layer.GetFeatureCount() == 0:
        raise InputError(parameter, f"the layer '{uri}' has no features; draw labelled polygons or points in it")
    features, nulls, lines = [], 0, 0
    for feature in layer:
        geometry = _usable(feature.GetGeometryRef())
        if geometry is None:
            continue
        if geometry.GetDimension() == 1:  # a line labels no well-defined set of pixels
            lines += 1
            continue
        if not feature.IsFieldSetAndNotNull(class_field):
            nulls += 1
            continue
        if is_int:
            value = feature.GetFieldAsInteger64(class_field)
        elif is_real:
            real = feature.GetFieldAsDouble(class_field)
            if not np.isfinite(real) or real != int(real):
                raise InputError(field_parameter, f"field '{class_field}' holds {real}, not a class code; "
                                                  "use an integer or text field")
            value = int(real)
        else:
            value = feature.GetFieldAsString(class_field)
            if not value.strip():
                nulls += 1
                continue
        features.append((geometry.Clone(), value))
    if lines:
        raise InputError(parameter, f"{lines} features of '{uri}' are lines; lines are not a label geometry; use "
                                    "polygons or points")
    srs = layer.GetSpatialRef()
    srs = srs.Clone() if srs is not None and not _undefined(srs) else None
    if not features:
        raise InputError(field_parameter, f"no feature of '{uri}' has a value in '{class_field}'"
                                          + (f" ({nulls} are NULL or empty)" if nulls else ""))
    return features, srs, nulls, (is_int or is_real)


def class_table_from_values(values, numeric: bool, field_parameter: str = "CLASS_FIELD") -> ClassTable:
    if numeric:
        ids = sorted(set(int(v) for v in values))
        if ids[0] <= 0:
            raise InputError(field_parameter, f"class code {ids[0]} found; codes must be positive integers "
                                              "(0 is reserved for nodata in the map)")
        if ids[-1] >= 2 ** 32:  # the map stores class ids as unsigned 32-bit at most
            raise InputError(field_parameter, f"class code {ids[-1]} is too large for a class map (codes go up to "
                                              f"{2 ** 32 - 1}); recode the classes with smaller integers or use a "
                                              "text field of class names")
        return ClassTable(ids=ids, names=[str(i) for i in ids])
    first_spelling = {}
    for value in values:
        first_spelling.setdefault(normalise_name(value), " ".join(str(value).split()))
    keys = sorted(first_spelling)
    return ClassTable(ids=list(range(1, len(keys) + 1)), names=[first_spelling[k] for k in keys])


def value_to_index(value, table: ClassTable, numeric: bool):
    """Index of a raw attribute value in the table, or None when it is not a known class."""
    if numeric:
        try:
            return table.index_of().get(int(value))
        except (TypeError, ValueError):
            return None
    key = normalise_name(value)
    for i, name in enumerate(table.names):
        if normalise_name(name) == key:
            return i
    if key.lstrip("-").isdigit():  # text codes such as "3" matching integer class ids
        return table.index_of().get(int(key))
    return None


def _undefined(srs):
    """GeoPackage and other formats store 'no CRS' as an 'Undefined geographic/cartesian SRS'."""
    name = (srs.GetName() or "").lower()
    return not srs.GetAuthorityCode(None) and (name.startswith("undefined") or not srs.ExportToWkt())


def _raster_srs(dataset):
    from osgeo import osr
    if dataset.crs is None:
        return None
    srs = osr.SpatialReference()
    srs.ImportFromWkt(dataset.crs.to_wkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _describe(srs):
    if srs is None:
        return "no CRS"
    code = srs.GetAuthorityCode(None)
    return f"{srs.GetAuthorityName(None)}:{code}" if code else srs.GetName()


def to_raster_crs(features, layer_srs, dataset, parameter="LABELS"):
    """Reproject feature geometries into the raster's CRS (in place); clear errors for missing CRSs."""
    from osgeo import osr

    raster_srs = _raster_srs(dataset)
    if raster_srs is None and layer_srs is None:
        return features
    if raster_srs is None:
        raise InputError("INPUT", "the raster has no CRS, so the labels cannot be placed on it; "
                                  "assign the raster a CRS (Raster > Projections > Assign Projection)")
    if layer_srs is None:
        raise InputError(parameter, "the label layer has no CRS, so it cannot be placed on the raster; set its "
                                    "CRS (Layer Properties > Source, or Vector > Data Management Tools > Assign "
                                    "Projection) to the one it was digitised in (the raster's is "
                                    f"{_describe(raster_srs)})")
    layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if not layer_srs.IsSame(raster_srs):
        transform = osr.CoordinateTransformation(layer_srs, raster_srs)
        for geometry, _ in features:
            try:
                failed = geometry.Transform(transform) != 0 or _usable(geometry) is None
            except RuntimeError:
                failed = True
            if failed:
                raise InputError(parameter, f"a feature cannot be reprojected from {_describe(layer_srs)} "
                                            f"to the raster's {_describe(raster_srs)}; check the layer's CRS")
    return features


def _check_overlap(features, dataset, parameter):
    """InputError saying how far off the labels are (and in which CRS) when none overlaps the raster."""
    b = dataset.bounds
    gaps = []
    for geometry, _ in features:
        x0, x1, y0, y1 = geometry.GetEnvelope()
        dx = max(b.left - x1, x0 - b.right, 0.0)
        dy = max(b.bottom - y1, y0 - b.top, 0.0)
        if dx == 0 and dy == 0:
            return
        gaps.append((float(np.hypot(dx, dy)), x0, x1, y0, y1))
    distance, x0, x1, y0, y1 = min(gaps)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    direction = ("north" if cy > b.top else "south" if cy < b.bottom else "") + \
                ("east" if cx > b.right else "west" if cx < b.left else "")
    crs = dataset.crs.to_string() if dataset.crs else "no CRS"
    units = ""
    try:
        if dataset.crs and dataset.crs.is_geographic:
            units = " degrees"
        elif dataset.crs and dataset.crs.linear_units not in (None, "", "unknown"):
            units = " " + {"metre": "m", "meter": "m"}.get(dataset.crs.linear_units, dataset.crs.linear_units)
    except Exception:  # noqa: BLE001 - units are only decoration
        units = ""
    raise InputError(parameter, f"no feature lies inside the raster: the nearest is {distance:.6g}{units} "
                                f"{direction or 'away'} of it (in the raster's CRS, {crs}: labels around "
                                f"x {cx:.10g}, y {cy:.10g}; raster x {b.left:.10g}..{b.right:.10g}, "
                                f"y {b.bottom:.10g}..{b.top:.10g}); check that the layer's CRS is set right "
                                "and that the labels belong to this raster")


@contextlib.contextmanager
def _burn_errors(uri, parameter):
    """Faults of OGR/rasterio burning odd geometries (curves, collections) as an InputError naming
    `parameter`; InputErrors pass unchanged."""
    try:
        yield
    except InputError:
        raise
    except Exception as error:  # odd geometries (curves, collections) that OGR/rasterio cannot burn
        raise InputError(parameter, f"cannot rasterise the features of '{uri}' ({type(error).__name__}: "
                                    f"{str(error)[:160]}); repair or simplify the geometries (Vector > Geometry "
                                    "Tools > Fix Geometries) and use polygons or points") from None


def rasterise(uri, class_field, dataset, label_rule="centre", classes: ClassTable = None,
              parameter="LABELS", field_parameter="CLASS_FIELD", halo=0) -> LabelGrid:
    """Label grid over the window of the raster that the features cover (plus halo, clipped).

    Rule (LABEL_RULE): a point labels the pixel it falls in; a polygon (or each part of a multipolygon)
    labels the pixels whose centre it contains ('centre'), or every pixel it touches ('all_touched'). Under
    'centre' a polygon smaller than a pixel that contains no pixel centre labels the pixel of its centroid,
    so no label is lost. Where features overlap, points win over polygons."""
    with _burn_errors(uri, parameter):
        return _rasterise(uri, class_field, dataset, label_rule, classes, parameter, field_parameter, halo)


def _prepare(uri, class_field, dataset, classes, parameter, field_parameter, halo):
    """(features, numeric, nulls, classes, shapes (GeoJSON, class index) with points last, window)."""
    from rasterio.windows import Window, from_bounds
    import json

    features, srs, nulls, numeric = read_features(uri, class_field, parameter, field_parameter)
    if classes is None:
        classes = class_table_from_values([v for _, v in features], numeric, field_parameter)
    features = to_raster_crs(features, srs, dataset, parameter)
    _check_overlap(features, dataset, parameter)
    minx = min(g.GetEnvelope()[0] for g, _ in features)
    maxx = max(g.GetEnvelope()[1] for g, _ in features)
    miny = min(g.GetEnvelope()[2] for g, _ in features)
    maxy = max(g.GetEnvelope()[3] for g, _ in features)
    window = from_bounds(minx, miny, maxx, maxy, transform=dataset.transform)
    r0 = int(np.floor(window.row_off)) - 1 - halo
    c0 = int(np.floor(window.col_off)) - 1 - halo
    r1 = int(np.ceil(window.row_off + window.height)) + 1 + halo
    c1 = int(np.ceil(window.col_off + window.width)) + 1 + halo
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, dataset.height), min(c1, dataset.width)
    if r1 <= r0 or c1 <= c0:
        b = dataset.bounds
        raise InputError(parameter, f"no feature lies inside the raster: the labels span x {minx:.6g}..{maxx:.6g}, "
                                    f"y {miny:.6g}..{maxy:.6g} and the raster x {b.left:.6g}..{b.right:.6g}, "
                                    f"y {b.bottom:.6g}..{b.top:.6g} (in the raster's CRS, "
                                    f"{dataset.crs.to_string() if dataset.crs else 'none'}); check the layer's CRS")
    window = Window(c0, r0, c1 - c0, r1 - r0)
    shapes = []
    unknown = set()
    for geometry, value in features:
        index = value_to_index(value, classes, numeric)
        if index is None:
            unknown.add(str(value))
            continue
        shapes.append((json.loads(geometry.ExportToJson()), index))
    if not shapes:
        raise InputError(field_parameter, f"none of the classes {sorted(unknown)[:10]} is known to the model "
                                          f"(it knows {classes.names}); check the class field")
    # Small shapes first would be overwritten by large ones; burn polygons then points on top.
    shapes.sort(key=lambda s: s[0]["type"] in ("Point", "MultiPoint"))
    return features, numeric, nulls, classes, shapes, window


def _rasterise(uri, class_field, dataset, label_rule, classes, parameter, field_parameter, halo):
    from rasterio.features import rasterize

    features, numeric, nulls, classes, shapes, window = _prepare(uri, class_field, dataset, classes, parameter,
                                                                 field_parameter, halo)
    index = rasterize(shapes, out_shape=(window.height, window.width), fill=-1,
                      transform=dataset.window_transform(window), all_touched=(label_rule == "all_touched"),
                      dtype="int32")
    # A polygon smaller than a pixel may cover no pixel centre: it labels the pixel of its centroid.
    if label_rule == "centre":
        for r, c, idx in _centroid_pixels(features, classes, numeric, dataset, window):
            if index[r, c] == -1:
                index[r, c] = idx
    return LabelGrid(index=index, row=int(window.row_off), col=int(window.col_off), classes=classes,
                     skipped_null=nulls)


def _centroid_pixels(features, classes, numeric, dataset, window):
    """(row, col, class index) in window coordinates of the centroid of each polygon smaller than a pixel,
    in feature order."""
    from osgeo import ogr
    from rasterio.transform import rowcol
    pixel_area = abs(dataset.transform.a * dataset.transform.e)
    for geometry, value in features:
        idx = value_to_index(value, classes, numeric)
        flat = ogr.GT_Flatten(geometry.GetGeometryType())
        if idx is None or flat not in (ogr.wkbPolygon, ogr.wkbMultiPolygon) or geometry.GetArea() >= pixel_area:
            continue
        point = geometry.Centroid()
        r, c = rowcol(dataset.window_transform(window), point.GetX(), point.GetY())
        if 0 <= r < window.height and 0 <= c < window.width:
            yield int(r), int(c), idx


@dataclass
class LabelPoints:
    """The labelled pixels only (no grid): what training needs however far apart the labels lie."""
    rows: np.ndarray        # (n,) raster row of each labelled pixel, row-major order
    cols: np.ndarray
    index: np.ndarray       # (n,) class index
    row: int                # the window rasterise() would cover (its origin and shape), for the
    col: int                # validation blocks, which are counted from it
    height: int
    width: int
    classes: ClassTable
    skipped_null: int


CHUNK = 1024  # side of the windows labels are burnt in: memory bounded by this, not by the labels' spread


def labelled_pixels(uri, class_field, dataset, label_rule="centre", classes: ClassTable = None,
                    parameter="LABELS", field_parameter="CLASS_FIELD", halo=0) -> LabelPoints:
    """The pixels rasterise() labels, as lists, burnt chunk by chunk where features lie (same rules)."""
    with _burn_errors(uri, parameter):
        return _labelled_pixels(uri, class_field, dataset, label_rule, classes, parameter, field_parameter, halo)


def _labelled_pixels(uri, class_field, dataset, label_rule, classes, parameter, field_parameter, halo):
    from rasterio.features import bounds as shape_bounds, rasterize
    from rasterio.windows import Window, from_bounds

    features, numeric, nulls, classes, shapes, window = _prepare(uri, class_field, dataset, classes, parameter,
                                                                 field_parameter, halo)
    r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    chunks = {}  # (chunk row, chunk col) -> shape numbers, in burning order
    for k, (geojson, _) in enumerate(shapes):
        x0, y0, x1, y1 = shape_bounds(geojson)
        box = from_bounds(x0, y0, x1, y1, transform=dataset.transform)
        top = max(int(np.floor(min(box.row_off, box.row_off + box.height))) - 1 - r0, 0)
        bottom = min(int(np.ceil(max(box.row_off, box.row_off + box.height))) + 1 - r0, h - 1)
        left = max(int(np.floor(min(box.col_off, box.col_off + box.width))) - 1 - c0, 0)
        right = min(int(np.ceil(max(box.col_off, box.col_off + box.width))) + 1 - c0, w - 1)
        for cr in range(top // CHUNK, bottom // CHUNK + 1):
            for cc in range(left // CHUNK, right // CHUNK + 1):
                chunks.setdefault((cr, cc), []).append(k)
    rows, cols, index = [], [], []
    for (cr, cc), members in sorted(chunks.items()):
        chunk = Window(c0 + cc * CHUNK, r0 + cr * CHUNK, min(CHUNK, w - cc * CHUNK), min(CHUNK, h - cr * CHUNK))
        burnt = rasterize([shapes[k] for k in members], out_shape=(int(chunk.height), int(chunk.width)), fill=-1,
                          transform=dataset.window_transform(chunk), all_touched=(label_rule == "all_touched"),
                          dtype="int32")
        r, c = np.nonzero(burnt >= 0)
        rows.append(r + cr * CHUNK)
        cols.append(c + cc * CHUNK)
        index.append(burnt[r, c])
    rows, cols, index = (np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64)
                         for a in (rows, cols, index))
    if label_rule == "centre":  # sub-pixel polygons label their centroid's pixel when it is still free
        taken = set((rows * w + cols).tolist()) if len(rows) < 4 * CHUNK * CHUNK else None
        extra, added = [], set()
        for r, c, idx in _centroid_pixels(features, classes, numeric, dataset, window):
            key = r * w + c
            free = key not in taken if taken is not None else not ((rows == r) & (cols == c)).any()
            if free and key not in added:
                added.add(key)
                extra.append((r, c, idx))
        if extra:
            rows, cols, index = (np.concatenate([a, np.array([e[i] for e in extra], dtype=np.int64)])
                                 for i, a in enumerate((rows, cols, index)))
    order = np.lexsort((cols, rows))
    return LabelPoints(rows=rows[order] + r0, cols=cols[order] + c0, index=index[order].astype(np.int64),
                       row=r0, col=c0, height=h, width=w, classes=classes, skipped_null=nulls)
