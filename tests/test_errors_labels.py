"""Issue 6, cases 1-6: the label layer and the raster's validity. Each case runs in QGIS (processing.run)
and at least once through bin/qgis-process; a failing run must name the parameter, show no traceback, leave
no output behind and leave its inputs byte-identical."""
import os

import numpy as np
import pytest
import rasterio

from hsigan_qgis import labels
from hsigan_qgis.errors import InputError
from hsigan_qgis.raster import open_raster
from conftest import run_qgis_process
from errors_helpers import (CLASSES, EPSG, PIXEL, SIZE, X0, Y0, box, cube, digest, listing, point, px,
                                 qgis_args, qgis_error, qgis_fails, qgis_feedback, read_map,
                                 reproject_wkt, same_tensors, scene, stripe_features, train_params, write_labels)


@pytest.fixture
def data(tmp_path):
    raster = scene(tmp_path / "scene.tif")
    return tmp_path, raster


def fails_in_qgis(processing_run, folder, raster, labels_path, field="cls", feedback=None, **extra):
    """Train in QGIS expecting a failure; checks nothing is written and the inputs are unchanged."""
    before, hashes = listing(folder), digest(raster, labels_path)
    model = str(folder / "out.hsigan")
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, labels_path, model, field, **extra),
                         feedback)
    assert not os.path.exists(model)
    assert listing(folder) == before, "something was left behind"
    assert digest(raster, labels_path) == hashes, "an input was modified"
    return message


# -- 1. CLASS_FIELD -----------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_class_field_missing(processing_run, data):
    folder, raster = data
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    message = fails_in_qgis(processing_run, folder, raster, gpkg, field="nope")
    assert "CLASS_FIELD" in message and "'nope'" in message and "cls" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_class_field_missing_qgis_process(data):
    folder, raster = data
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    hashes = digest(raster, gpkg)
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan"), "nope"), "CLASS_FIELD",
                      folder)
    assert "'nope'" in text and "cls" in text
    assert digest(raster, gpkg) == hashes


@pytest.mark.qgis
@pytest.mark.hostile
def test_class_field_empty(processing_run, data):
    folder, raster = data
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    assert "CLASS_FIELD" in fails_in_qgis(processing_run, folder, raster, gpkg, field="")
    with open_raster(raster) as dataset, pytest.raises(InputError) as caught:
        labels.rasterise(gpkg, "", dataset)
    assert caught.value.parameter == "CLASS_FIELD" and "choose one of ['cls']" in str(caught.value)


@pytest.mark.qgis
@pytest.mark.hostile
def test_class_field_all_null(processing_run, data):
    folder, raster = data
    gpkg = write_labels(folder / "labels.gpkg", [(w, {"cls": None}) for w, _ in stripe_features()],
                        field_types={"cls": "str"})
    message = fails_in_qgis(processing_run, folder, raster, gpkg)
    assert "CLASS_FIELD" in message and "3 are NULL or empty" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_class_field_some_null_are_skipped_with_a_warning(processing_run, data):
    folder, raster = data
    features = stripe_features() + [(box(0, 0, 2, 2), {"cls": None}), (box(0, 0, 3, 2), {"cls": "   "})]
    gpkg = write_labels(folder / "labels.gpkg", features)
    feedback = qgis_feedback()
    model = str(folder / "m.hsigan")
    result = processing_run("hsigan:train", train_params(raster, gpkg, model), feedback=feedback)
    assert "2 label features have no class value" in feedback.text
    assert os.path.isfile(model) and result["TRAIN_PIXELS"] > 0
    from hsigan_qgis.model_file import load
    assert load(model, with_tensors=False)[0]["class_names"] == sorted(CLASSES)


@pytest.mark.qgis
def test_class_names_match_across_case_and_whitespace(processing_run, data):
    folder, raster = data
    spellings = ["grass", " GRASS ", "Water", "water  ", "Soil", "s O i l"]
    features = stripe_features()
    features = [(features[k // 2][0], {"cls": spellings[k]}) for k in range(6)]
    gpkg = write_labels(folder / "labels.gpkg", features)
    model = str(folder / "m.hsigan")
    processing_run("hsigan:train", train_params(raster, gpkg, model))
    from hsigan_qgis.model_file import load
    names = load(model, with_tensors=False)[0]["class_names"]
    # "s O i l" is another name ("s o i l" != "soil"), the other variants fold into one class each.
    assert names == ["grass", "s O i l", "Soil", "Water"]


# -- 2. labels outside the raster -----------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_labels_outside_raster_say_how_far_and_crs(processing_run, data):
    folder, raster = data
    gpkg = write_labels(folder / "far.gpkg", [(box(100, 100, 102, 102), {"cls": "a"}),
                                              (box(100, 100, 103, 103), {"cls": "b"})])
    message = fails_in_qgis(processing_run, folder, raster, gpkg)
    # nearest label corner (col 100, row 100) vs raster corner (24, 24): 760 m east and 760 m south
    assert "LABELS" in message and "1074.8 m southeast" in message and "EPSG:32633" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_labels_outside_raster_qgis_process(data):
    folder, raster = data
    gpkg = write_labels(folder / "far.gpkg", [(box(-60, 5, -50, 8), {"cls": "a"}), (box(-60, 9, -50, 12), {"cls": "b"})])
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan")), "LABELS", folder)
    assert "500 m west" in text and "EPSG:32633" in text


# -- 3. CRS ---------------------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.parametrize("epsg", [4326, 32632])
def test_labels_in_another_crs_are_reprojected(processing_run, data, epsg):
    folder, raster = data
    same = write_labels(folder / "same.gpkg", stripe_features())
    other = write_labels(folder / f"other{epsg}.gpkg",
                         [(reproject_wkt(w, epsg), a) for w, a in stripe_features()], epsg=epsg)
    hashes = digest(other)
    maps = []
    for name, gpkg in (("same", same), ("other", other)):
        model = str(folder / f"{name}.hsigan")
        out = str(folder / f"{name}.tif")
        processing_run("hsigan:train", train_params(raster, gpkg, model))
        processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
        maps.append(read_map(out)[0])
    assert same_tensors(str(folder / "same.hsigan"), str(folder / "other.hsigan"))
    assert np.array_equal(maps[0], maps[1]) and (maps[0] > 0).all()
    assert digest(other) == hashes


@pytest.mark.qgis
@pytest.mark.hostile
def test_labels_without_crs(processing_run, data):
    folder, raster = data
    gpkg = write_labels(folder / "nocrs.gpkg", stripe_features(), epsg=None)
    message = fails_in_qgis(processing_run, folder, raster, gpkg)
    assert "LABELS" in message and "no CRS" in message and "EPSG:32633" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_labels_without_crs_qgis_process(data):
    folder, raster = data
    gpkg = write_labels(folder / "nocrs.gpkg", stripe_features(), epsg=None)
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan")), "LABELS", folder)
    assert "no CRS" in text


# -- 4. class counts ------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_class_with_a_single_labelled_pixel(processing_run, data):
    folder, raster = data
    features = stripe_features()[:2] + [(point(20, 5), {"cls": "Soil"})]
    gpkg = write_labels(folder / "labels.gpkg", features)
    model, out = str(folder / "m.hsigan"), str(folder / "map.tif")
    full = processing_run("hsigan:train", train_params(raster, write_labels(folder / "two.gpkg", features[:2]),
                                                       str(folder / "two.hsigan")))
    result = processing_run("hsigan:train", train_params(raster, gpkg, model))
    assert result["TRAIN_PIXELS"] == full["TRAIN_PIXELS"] + 1
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
    from hsigan_qgis.model_file import load
    assert load(model, with_tensors=False)[0]["class_names"] == ["Grass", "Soil", "Water"]
    assert set(np.unique(read_map(out)[0])) <= {1, 2, 3}


@pytest.mark.qgis
@pytest.mark.hostile
def test_only_one_class(processing_run, data):
    folder, raster = data
    gpkg = write_labels(folder / "one.gpkg", stripe_features()[:1])
    message = fails_in_qgis(processing_run, folder, raster, gpkg)
    assert "LABELS" in message and "only one class (Grass)" in message and "at least two" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_only_one_class_qgis_process(data):
    folder, raster = data
    gpkg = write_labels(folder / "one.gpkg", stripe_features()[1:2])
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan")), "LABELS", folder)
    assert "only one class (Water)" in text


@pytest.mark.qgis
def test_more_than_255_classes_widen_the_map(processing_run, data):
    folder, raster = data
    features = [(point(i % SIZE, i // SIZE), {"code": i + 1}) for i in range(300)]
    gpkg = write_labels(folder / "many.gpkg", features)
    model, out = str(folder / "m.hsigan"), str(folder / "map.tif")
    result = processing_run("hsigan:train", train_params(raster, gpkg, model, "code"))
    assert result["TRAIN_PIXELS"] == 300
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
    values, dtype = read_map(out)
    assert dtype == "uint16"
    assert values.min() >= 1 and values.max() <= 300


@pytest.mark.qgis
def test_more_than_255_classes_qgis_process(processing_run, data):
    folder, raster = data
    features = [(point(i % SIZE, i // SIZE), {"code": 1000 + i}) for i in range(260)]
    gpkg = write_labels(folder / "many.gpkg", features)
    model, out = str(folder / "m.hsigan"), str(folder / "map.tif")
    done = run_qgis_process("run", "hsigan:train", "--", *qgis_args(train_params(raster, gpkg, model, "code")))
    assert done.returncode == 0, done.stdout + done.stderr
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
    values, dtype = read_map(out)
    assert dtype == "uint16" and values.min() >= 1000 and values.max() <= 1259


# -- 5. nodata ------------------------------------------------------------------------------------------
def nodata_scene(folder, kind, cols=slice(0, 4)):
    """The scene with columns `cols` invalid: by a nodata value, NaN (declared or not) or a mask band."""
    data = cube()
    path = str(folder / f"nodata_{kind}.tif")
    if kind == "value":
        data[:, :, cols] = -9999
        return scene(path, data, nodata=-9999)
    if kind == "nan":
        data[:, :, cols] = np.nan
        return scene(path, data, nodata=float("nan"))
    if kind == "nan-undeclared":
        data[:, :, cols] = np.nan
        return scene(path, data)
    mask = np.full((SIZE, SIZE), 255, np.uint8)
    mask[:, cols] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=data.shape[0], dtype="float32",
                           crs=f"EPSG:{EPSG}", transform=rasterio.transform.from_origin(X0, Y0, PIXEL, PIXEL)) as dst:
            dst.write(data)
            dst.write_mask(mask)
    return path


@pytest.mark.qgis
@pytest.mark.parametrize("kind", ["value", "nan", "nan-undeclared", "mask"])
def test_nodata_pixels_are_not_trained_on_nor_classified(processing_run, data, kind):
    folder, _ = data
    raster = nodata_scene(folder, kind)
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    hashes = digest(raster, gpkg)
    model, out = str(folder / "m.hsigan"), str(folder / "map.tif")
    result = processing_run("hsigan:train", train_params(raster, gpkg, model))
    # Grass covers columns 2..5 (centres); columns 2 and 3 are nodata: 2 of its 4 columns x 18 rows go
    assert result["TRAIN_PIXELS"] == 3 * 4 * 18 - 2 * 18
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
    values = read_map(out)[0]
    assert (values[:, :4] == 0).all() and (values[:, 4:] > 0).all()
    assert digest(raster, gpkg) == hashes


@pytest.mark.qgis
@pytest.mark.hostile
def test_labels_only_on_nodata(processing_run, data):
    folder, _ = data
    raster = nodata_scene(folder, "value", cols=slice(0, SIZE))
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    message = fails_in_qgis(processing_run, folder, raster, gpkg)
    assert "LABELS" in message and "nodata" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_labels_only_on_nodata_qgis_process(data):
    folder, _ = data
    raster = nodata_scene(folder, "nan", cols=slice(0, SIZE))
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan")), "LABELS", folder)
    assert "nodata" in text


@pytest.mark.qgis
@pytest.mark.hostile
def test_class_only_on_nodata_is_warned_about(processing_run, data):
    folder, _ = data
    raster = nodata_scene(folder, "mask", cols=slice(0, 8))
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    feedback = qgis_feedback()
    processing_run("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan")), feedback=feedback)
    assert "classes without valid training pixels" in feedback.text and "Grass" in feedback.text


# -- 6. geometry types and the rasterisation rule ----------------------------------------------------------
def grid_of(raster, gpkg, rule):
    with open_raster(raster) as dataset:
        grid = labels.rasterise(gpkg, "cls", dataset, rule)
    full = np.full((SIZE, SIZE), -1)
    full[grid.row:grid.row + grid.index.shape[0], grid.col:grid.col + grid.index.shape[1]] = grid.index
    return {(int(r), int(c)): grid.classes.names[full[r, c]] for r, c in np.argwhere(full >= 0)}


def geometry_features():
    two_squares = (f"MULTIPOLYGON((({X0 + 10} {Y0 - 10},{X0 + 30} {Y0 - 10},{X0 + 30} {Y0 - 30},{X0 + 10} {Y0 - 30},"
                   f"{X0 + 10} {Y0 - 10})),(({X0 + 100} {Y0 - 100},{X0 + 110} {Y0 - 100},{X0 + 110} {Y0 - 110},"
                   f"{X0 + 100} {Y0 - 110},{X0 + 100} {Y0 - 100})))")
    cx, cy = X0 + 190 + 1, Y0 - 90 - 1         # 3 m square in a corner of pixel (col 19, row 9)
    corner = f"POLYGON(({cx} {cy},{cx + 3} {cy},{cx + 3} {cy - 3},{cx} {cy - 3},{cx} {cy}))"
    gx, gy = X0 + 200 - 2, Y0 - 200 + 2        # 4 m square across the corner of four pixels (19..20, 19..20)
    across = f"POLYGON(({gx} {gy},{gx + 4} {gy},{gx + 4} {gy - 4},{gx} {gy - 4},{gx} {gy}))"
    x1, y1 = px(15, 3)
    x2, y2 = px(16, 4)
    return [(two_squares, {"cls": "multi"}), (point(5, 20), {"cls": "point"}),
            (f"MULTIPOINT(({x1} {y1}),({x2} {y2}))", {"cls": "point"}),
            (corner, {"cls": "tiny"}), (across, {"cls": "tiny"})]


def test_points_multipolygons_and_subpixel_polygons(data):
    folder, raster = data
    gpkg = write_labels(folder / "geoms.gpkg", geometry_features())
    centre = grid_of(raster, gpkg, "centre")
    assert centre == {(1, 1): "multi", (1, 2): "multi", (2, 1): "multi", (2, 2): "multi", (10, 10): "multi",
                      (20, 5): "point", (3, 15): "point", (4, 16): "point",
                      (9, 19): "tiny",      # centre covered by no polygon: the pixel of its centroid
                      (20, 20): "tiny"}     # the centroid lies in pixel (20, 20)
    touched = grid_of(raster, gpkg, "all_touched")
    assert {k for k, v in touched.items() if v == "tiny"} == {(9, 19), (19, 19), (19, 20), (20, 19), (20, 20)}
    assert {k: v for k, v in touched.items() if v == "point"} == {(20, 5): "point", (3, 15): "point",
                                                                   (4, 16): "point"}


@pytest.mark.qgis
@pytest.mark.parametrize("rule, pixels", [(0, 10), (1, None)])
def test_label_rule_in_qgis(processing_run, data, rule, pixels):
    folder, raster = data
    gpkg = write_labels(folder / "geoms.gpkg", geometry_features())
    result = processing_run("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan"), LABEL_RULE=rule))
    expected = pixels or len(grid_of(raster, gpkg, "all_touched"))
    assert result["TRAIN_PIXELS"] == expected


@pytest.mark.qgis
def test_label_rule_qgis_process(data):
    import json
    folder, raster = data
    gpkg = write_labels(folder / "geoms.gpkg", geometry_features())
    done = run_qgis_process("--json", "run", "hsigan:train", "--",
                            *qgis_args(train_params(raster, gpkg, str(folder / "m.hsigan"), LABEL_RULE=1)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["results"]["TRAIN_PIXELS"] == len(grid_of(raster, gpkg, "all_touched"))
