"""hsigan:classify engine: tiled == one-piece == patch-per-pixel, nodata, types, georeference, input and
output formats, scale/offset, confidence/probabilities, COG, bad bands. Small synthetic rasters and
hand-made models keep it fast; the Salinas-A model of conftest checks a trained net too."""
import os

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from classify_helpers import BANDS, H, W, Log, assert_same_labels, cube, make_model, patch_labels, read, run
from conftest import RASTER, TRAIN_LABELS, write_raster
from hsigan_qgis import block_reader, device_normalise, model_file
from hsigan_qgis.config import ClassifyConfig
from hsigan_qgis.classify import classify
from hsigan_qgis.raster import open_raster, read_raw, read_window
from hsigan_qgis.sampling import Normalisation
from hsigan_qgis.styling import read_class_table

def test_tiled_equals_untiled_and_patch_prediction(tmp_path):
    model = make_model(tmp_path / "m.hsigan", patch_size=7)
    raster = write_raster(tmp_path / "in.tif", cube())
    whole, _ = run(tmp_path, raster, model, "whole.tif", tile_size=128, output_confidence=str(tmp_path / "wc.tif"))
    reference, margin = patch_labels(model, raster)
    assert_same_labels(read(whole, 1), reference, margin)
    assert len(np.unique(reference)) > 1
    for size in (16, 17, 20, 41, 53):  # 17, 20: do not divide 41 x 53; 16 < 2 * halo + tile edge cases
        out, _ = run(tmp_path, raster, model, f"t{size}.tif", tile_size=size,
                     output_confidence=str(tmp_path / f"c{size}.tif"))
        assert_same_labels(read(out, 1), read(whole, 1), margin)
        np.testing.assert_allclose(read(tmp_path / f"c{size}.tif", 1), read(tmp_path / "wc.tif", 1), atol=1e-5)


def test_tiled_equals_untiled_trained_model(tmp_path, trained_model):
    model, _ = trained_model
    maps = [read(run(tmp_path, RASTER, model, f"s{size}.tif", tile_size=size)[0], 1) for size in (256, 16, 30)]
    assert (maps[0] == maps[1]).all() and (maps[0] == maps[2]).all()
    assert (maps[0] > 0).mean() > 0.99


def test_georeference_type_and_styling(tmp_path):
    model = make_model(tmp_path / "m.hsigan")
    raster = write_raster(tmp_path / "in.tif", cube(), crs="EPSG:32633",
                          transform=from_origin(500000.0, 6000000.0, 10.0, 10.0))
    out, result = run(tmp_path, raster, model)
    with rasterio.open(raster) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width, src.height)
        assert dst.dtypes[0] == "uint8" and dst.nodata == 0 and dst.count == 1
        assert dst.profile["tiled"] and dst.profile["compress"] == "deflate"
        assert dst.colormap(1)[2][:3] == (40, 90, 150)
    assert read_class_table(out) == {1: "c1", 2: "c2", 3: "c3", 4: "c4"}
    assert os.path.exists(tmp_path / "map.qml")
    assert result.device == "cpu" and result.read_seconds >= 0


@pytest.mark.parametrize("threads", [2, 3])
def test_reading_threads_give_the_same_map(tmp_path, threads):
    """Several reading threads (as on CUDA) hand the tiles over in order and give the one-thread map;
    GDAL's multi-threaded decoding changes nothing either."""
    model = make_model(tmp_path / "m.hsigan", patch_size=7)
    raster = write_raster(tmp_path / "in.tif", cube())
    one, result = run(tmp_path, raster, model, "one.tif", tile_size=16, output_confidence=str(tmp_path / "c1.tif"))
    assert result.read_threads == 1  # CPU default
    many, result = run(tmp_path, raster, model, "many.tif", tile_size=16, output_confidence=str(tmp_path / "cn.tif"),
                       tuning=dict(read_threads=threads))
    assert result.read_threads == threads
    assert (read(many, 1) == read(one, 1)).all()
    assert (read(tmp_path / "cn.tif", 1) == read(tmp_path / "c1.tif", 1)).all()
    stats = {}
    plan = block_reader.Plan(16, 16, 16)
    got = [w for w, _, _ in block_reader.read_tiles(str(raster), H, W, plan, 3, None, stats, threads, 4, "ALL_CPUS")]
    assert got == [w for w, _, _ in block_reader.read_tiles(str(raster), H, W, plan, 3, None, {}, 1, 1)]
    assert stats["read_seconds"] > 0


def test_reading_stops_when_the_consumer_does(tmp_path):
    """A cancelled classification stops reading: the generator closes its thread pool and raster handles."""
    import threading

    raster = write_raster(tmp_path / "in.tif", cube())
    norm = Normalisation([0.0] * BANDS, [1.0] * BANDS, [])
    reader = block_reader.read_tiles(str(raster), H, W, block_reader.Plan(16, 16, 16), 2, norm, {}, 3, 4)
    next(reader)
    reader.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("hsigan-read")]


def test_reading_threads_get_handles_opened_before_they_start(tmp_path, monkeypatch):
    """Each reading thread reads with a handle this thread opened before starting them (opened in a new thread, a
    georeferenced GeoTIFF first sets up that thread's PROJ context, and 16 threads took turns: run 16); all are
    closed when the reading ends, and when opening the third fails, the two opened before are closed too."""
    import threading

    from hsigan_qgis.errors import InputError

    raster = write_raster(tmp_path / "in.tif", cube())
    opened, opening = [], block_reader.open_raster

    def recorded(path):
        if len(opened) == fail_at:
            raise InputError("INPUT", "cannot open")
        opened.append((threading.current_thread(), opening(path)))
        return opened[-1][1]
    monkeypatch.setattr(block_reader, "open_raster", recorded)
    fail_at = None
    plan = block_reader.Plan(16, 16, 16)
    tiles = list(block_reader.read_tiles(str(raster), H, W, plan, 3, None, {}, 3, 4))
    assert len(tiles) == block_reader.count_tiles(H, W, plan, 3) > 3 and len(opened) == 3
    assert {thread for thread, _ in opened} == {threading.current_thread()}
    assert all(handle.closed for _, handle in opened)
    opened.clear()
    fail_at = 2
    with pytest.raises(InputError):
        list(block_reader.read_tiles(str(raster), H, W, plan, 3, None, {}, 3, 4))
    assert len(opened) == 2 and all(handle.closed for _, handle in opened)


LAYOUTS = {"strips": {}, "tiled": dict(tiled=True, blockxsize=16, blockysize=16), "envi": dict(driver="ENVI")}


@pytest.mark.parametrize("on_torch", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_block_reader_reads_each_pixel_once_and_equals_read_window(tmp_path, monkeypatch, layout, on_torch):
    """The block-order reader gives every tile exactly read_window's halo'd, normalised data and validity
    (edges reflected, NaN holes), whatever the chunk geometry, while reading each pixel from the file once.
    on_torch: the chunks copied to a torch device by the reading threads and the halo carried there, as on
    CUDA (here the CPU device: the same code path without a GPU)."""
    data = cube(bands=3)
    data[:, nodata_holes()] = np.nan
    suffix = ".envi" if layout == "envi" else ".tif"
    path = write_raster(tmp_path / ("in" + suffix), data, nodata=float("nan"), **LAYOUTS[layout])
    norm = Normalisation([0.1] * 3, [2.0] * 3, [])
    reads = []

    def recording(dataset, row, col, h, w, halo=0, skip_bands=None, out=None):
        reads.append((row, col, h, w, halo))
        return read_window(dataset, row, col, h, w, halo, skip_bands, out)

    def recording_raw(dataset, row, col, h, w):
        reads.append((row, col, h, w, 0))
        return read_raw(dataset, row, col, h, w)

    monkeypatch.setattr(device_normalise, "read_raw", recording_raw)  # on_torch: stored values, normalised there
    with open_raster(path) as ds:
        plans = [block_reader.Plan(16, 16, 16), block_reader.Plan(17, 20, 20), block_reader.Plan(16, W, 20),
                 block_reader.plan(H, W, ds.block_shapes[0], 3, 0, "cpu")]
        for halo, plan in [(h, p) for h in (0, 1, 3, 15) for p in plans]:
            reads.clear()
            monkeypatch.setattr(block_reader, "read_window", recording)
            tiles = list(block_reader.read_tiles(path, H, W, plan, halo, norm, {}, threads=2, depth=3,
                                                 device=torch.device("cpu") if on_torch else None))
            monkeypatch.setattr(block_reader, "read_window", read_window)
            read_count = np.zeros((H, W), int)
            for row, col, h, w, read_halo in reads:
                assert read_halo == 0
                read_count[row:row + h, col:col + w] += 1
            assert (read_count == 1).all()
            covered = np.zeros((H, W), int)
            for (row, col, h, w), x, valid in tiles:
                assert isinstance(x, torch.Tensor) == on_torch and isinstance(valid, torch.Tensor) == on_torch
                x, valid = np.asarray(x), np.asarray(valid)
                covered[row:row + h, col:col + w] += 1
                want, want_valid = read_window(ds, row, col, h, w, halo, skip_bands=[])
                norm.apply(want, want_valid)
                np.testing.assert_array_equal(x, want)
                np.testing.assert_array_equal(valid, want_valid)
            assert (covered == 1).all()
            assert len(tiles) == block_reader.count_tiles(H, W, plan, halo)


def _stored(kind):
    """(data, nodata, scale/offset or None) of a raster stored as `kind`, with nodata holes."""
    holes, data = nodata_holes(), cube(bands=4)
    if kind == "float32-nan":
        data[:, holes] = np.nan
        return data, float("nan"), None
    if kind == "float32-value":
        data[1:, holes] = -1.5  # one band keeps a value: -1.5 there is judged in every band
        return data, -1.5, None
    if kind == "int16-scaled":
        data = np.round(data * 3000).astype(np.int16)
        data[:, holes] = -9999
        return data, -9999, ([0.001, 0.002, 0.001, 0.5], [0.1, 0.0, -0.2, 3.0])
    if kind == "uint16-high":  # values above 32767 travel as int16 bits
        data = np.round(data * 3000 + 40000).astype(np.uint16)
        data[:, holes] = 65535
        return data, 65535, None
    return np.round(data * 20 + 128).clip(0, 255).astype(np.uint8), None, None  # uint8, no nodata


@pytest.mark.parametrize("kind", ["float32-nan", "float32-value", "int16-scaled", "uint16-high", "uint8", "mask-band"])
def test_normalised_on_the_device_equals_the_cpu(tmp_path, kind):
    """CUDA's path: chunks sent to the device in the file's own type and judged (nodata values, NaN),
    scaled and normalised there give exactly the CPU's float32 bands and validity (here on the CPU device);
    a file with a mask band is judged on the CPU as before. A bad band is zeroed and not judged."""
    data, nodata, scaling = _stored("float32-nan" if kind == "mask-band" else kind)
    if nodata is not None:
        data[2, 20:24, :] = nodata  # only in the bad band 2: these pixels stay valid
    path = write_raster(tmp_path / "in.tif", data, nodata=nodata, tiled=True, blockxsize=16, blockysize=16,
                        photometric="minisblack")  # 4 bands of uint8 would be RGBA
    if scaling:
        with rasterio.open(path, "r+") as dst:
            dst.scales, dst.offsets = scaling
    if kind == "mask-band":
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dst:
            dst.write_mask(np.where(np.roll(nodata_holes(), 7, axis=1), 0, 255).astype(np.uint8))
    with open_raster(path) as ds:
        sample, _ = read_window(ds, 0, 0, H, W)
    mean = np.nanmean(np.where(np.isfinite(sample), sample, np.nan), axis=(1, 2))
    norm = Normalisation(mean, [2.5, 0.7, 1.3, 3.1], [2])
    cpu_device = torch.device("cpu")
    with open_raster(path) as ds:
        assert (device_normalise.DeviceNormalisation.for_raster(ds, norm, cpu_device) is None) == (kind == "mask-band")
    plan = block_reader.Plan(16, 32, 32)
    want = list(block_reader.read_tiles(path, H, W, plan, 3, norm, {}, threads=2))
    got = list(block_reader.read_tiles(path, H, W, plan, 3, norm, {}, threads=2, device=cpu_device))
    assert len(got) == len(want)
    for (window, x, valid), (want_window, want_x, want_valid) in zip(got, want):
        assert window == want_window
        np.testing.assert_array_equal(x.numpy(), want_x)
        np.testing.assert_array_equal(valid.numpy(), want_valid)
    invalid = sum(int((~v).sum()) for _, _, v in want)
    assert invalid > 0 or kind == "uint8"


def test_automatic_tile_plan_follows_blocks_and_device():
    tiled = block_reader.plan(4096, 4096, (256, 256), 200, 0, "cpu")
    assert tiled.strip_rows % 256 == 0 and tiled.chunk_cols % 256 == 0 and tiled.chunk_cols == 256
    assert block_reader.plan(4096, 4096, (256, 256), 200, 0, "cuda").chunk_cols == 256
    bsq = block_reader.plan(4096, 4096, (1, 4096), 200, 0, "cpu")
    assert bsq.chunk_cols == 4096 and bsq.strip_rows * 4096 * 200 * 4 <= block_reader.CHUNK_BYTES["cpu"]
    assert block_reader.plan(4096, 4096, (256, 256), 200, 100, "cpu") == block_reader.Plan(100, 100, 100)
    wide = block_reader.plan(4096, 100000, (1, 100000), 200, 0, "cpu")  # memory stays bounded
    assert wide.strip_rows * wide.chunk_cols * 200 * 4 <= block_reader.CHUNK_BYTES["cpu"]
    strips = block_reader.plan(4096, 4096, (1, 4096), 200, 0, "cuda")  # chunks are held in GPU memory
    chunk = strips.strip_rows * strips.chunk_cols * 200 * 4
    assert block_reader.in_flight(strips, 200, 16, "cuda") * chunk <= block_reader.IN_FLIGHT_BYTES["cuda"]
    on_small_card = block_reader.in_flight(strips, 200, 16, "cuda", free_bytes=4 << 30)  # a quarter of it
    assert on_small_card < block_reader.in_flight(strips, 200, 16, "cuda") and on_small_card * chunk <= 1 << 30


def test_read_threads_rule(monkeypatch):
    from hsigan_qgis import classify as classify_job

    assert classify_job.read_threads("cpu") == 1
    monkeypatch.setattr(classify_job.os, "cpu_count", lambda: 16)
    assert classify_job.read_threads("cuda") == 16
    monkeypatch.setattr(classify_job.os, "cpu_count", lambda: 64)
    assert classify_job.read_threads("cuda") == 16
    monkeypatch.setattr(classify_job.os, "cpu_count", lambda: 2)
    assert classify_job.read_threads("cuda") == 2


@pytest.mark.parametrize("scale, warned", [(1.0, False), (1.5, False), (1e-4, True), (1e4, True)])
def test_a_raster_on_another_scale_is_warned_about(tmp_path, scale, warned):
    """A model trained on values around 2000 (reflectance x 10000) meets a raster scaled by `scale`."""
    model = make_model(tmp_path / "m.hsigan", mean=2000.0, std=300.0)
    raster = write_raster(tmp_path / "in.tif", (cube() * 300 + 2000) * scale)
    log = Log()
    classify(ClassifyConfig(input=str(raster), model=model, output=str(tmp_path / "map.tif")), log)
    warnings = [line for line in log.lines if "another scale" in line]
    assert bool(warnings) is warned, log.lines
    if warned:
        assert warnings[0].startswith("Warning: INPUT: the raster's values are about") and "Rescale" in warnings[0]


def test_classify_without_gdal_bindings(tmp_path, monkeypatch):
    """The engine's classify runs where only rasterio is installed (a GPU server with pip's rasterio and no
    osgeo): the same map and colour table, no attribute table, and the log says so."""
    import sys

    model = make_model(tmp_path / "m.hsigan")
    raster = write_raster(tmp_path / "in.tif", cube())
    with_gdal, _ = run(tmp_path, raster, model, "with.tif")
    monkeypatch.setitem(sys.modules, "osgeo", None)  # any `from osgeo import ...` now raises ImportError
    with pytest.raises(ImportError):
        from osgeo import gdal  # noqa: F401
    out = str(tmp_path / "without.tif")
    log = Log()
    classify(ClassifyConfig(input=str(raster), model=model, output=out, tta=False), log)
    monkeypatch.delitem(sys.modules, "osgeo")
    assert (read(out, 1) == read(with_gdal, 1)).all()
    with rasterio.open(out) as dst:
        assert dst.colormap(1)[2][:3] == (40, 90, 150)
    assert read_class_table(out) == {} and read_class_table(with_gdal)[1] == "c1"
    assert any("No raster attribute table" in line for line in log.lines)


@pytest.mark.parametrize("ids, dtype", [((5, 300, 7), "uint16"), ((5, 70000), "uint32")])
def test_wide_class_ids(tmp_path, ids, dtype):
    model = make_model(tmp_path / "m.hsigan", class_ids=ids)
    out, _ = run(tmp_path, write_raster(tmp_path / "in.tif", cube()), model)
    with rasterio.open(out) as dst:
        assert dst.dtypes[0] == dtype
        values = set(np.unique(dst.read(1)).tolist())
    assert values <= set(ids) and len(values) > 1
    assert read_class_table(out)[ids[1]] == f"c{ids[1]}"


def nodata_holes():
    holes = np.zeros((H, W), dtype=bool)
    holes[5:9, 10:20] = True
    holes[0, :] = True
    holes[30:, 50:] = True
    return holes


def test_nodata_value_int(tmp_path):
    model = make_model(tmp_path / "m.hsigan", mean=1000.0, std=300.0)
    data = (cube() * 300 + 1000).astype(np.int16)
    holes = nodata_holes()
    data[:, holes] = -9999
    out, _ = run(tmp_path, write_raster(tmp_path / "in.tif", data, nodata=-9999), model,
                 output_confidence=str(tmp_path / "conf.tif"))
    labels = read(out, 1)
    assert (labels[holes] == 0).all() and (labels[~holes] > 0).all()
    assert (read(tmp_path / "conf.tif", 1)[holes] == -1).all()


def test_nodata_nan_float(tmp_path):
    model = make_model(tmp_path / "m.hsigan")
    data = cube()
    holes = nodata_holes()
    data[:, holes] = np.nan
    out, _ = run(tmp_path, write_raster(tmp_path / "in.tif", data, nodata=float("nan")), model)
    labels = read(out, 1)
    assert (labels[holes] == 0).all() and (labels[~holes] > 0).all()


def test_mask_band(tmp_path):
    model = make_model(tmp_path / "m.hsigan")
    holes = nodata_holes()
    path = write_raster(tmp_path / "in.tif", cube())
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "r+") as dst:
            dst.write_mask(np.where(holes, 0, 255).astype(np.uint8))
    labels = read(run(tmp_path, path, model)[0], 1)
    assert (labels[holes] == 0).all() and (labels[~holes] > 0).all()


def test_alpha_band_is_a_bad_band(tmp_path):
    """An alpha band masks pixels; being constant (255) in training it is one of the model's bad bands."""
    from rasterio.enums import ColorInterp
    model = make_model(tmp_path / "m.hsigan", bands=BANDS + 1, bad_bands=[BANDS])
    holes = nodata_holes()
    alpha = np.where(holes, 0, 255).astype(np.float32)[None]
    path = write_raster(tmp_path / "in.tif", np.concatenate([cube(), alpha]), photometric="minisblack")
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [ColorInterp.gray] * BANDS + [ColorInterp.alpha]
    labels = read(run(tmp_path, path, model)[0], 1)
    assert (labels[holes] == 0).all() and (labels[~holes] > 0).all()


def test_vrt_mosaic_equals_geotiff(tmp_path):
    from osgeo import gdal
    model = make_model(tmp_path / "m.hsigan", patch_size=7)
    data = cube()
    transform = from_origin(615000.0, 4063000.0, 3.7, 3.7)
    full = write_raster(tmp_path / "full.tif", data, transform=transform)
    split = 29
    left = write_raster(tmp_path / "left.tif", data[:, :, :split], transform=transform)
    right = write_raster(tmp_path / "right.tif", data[:, :, split:],
                         transform=transform * rasterio.Affine.translation(split, 0))
    vrt = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(vrt, [left, right]).FlushCache()
    a = read(run(tmp_path, full, model, "a.tif", tile_size=16)[0], 1)
    b = read(run(tmp_path, vrt, model, "b.tif", tile_size=16)[0], 1)
    assert (a == b).all()


def test_envi_input(tmp_path):
    model = make_model(tmp_path / "m.hsigan")
    data = cube()
    a = read(run(tmp_path, write_raster(tmp_path / "in.tif", data), model, "a.tif")[0], 1)
    envi = write_raster(tmp_path / "in.envi", data, driver="ENVI")
    assert rasterio.open(envi).driver == "ENVI"
    b = read(run(tmp_path, envi, model, "b.tif")[0], 1)
    assert (a == b).all()


def test_scale_offset_respected(tmp_path):
    model = make_model(tmp_path / "m.hsigan")
    stored = np.clip(np.round((cube() - 0.1) / 0.001), -32000, 32000).astype(np.int16)
    scaled = write_raster(tmp_path / "scaled.tif", stored)
    with rasterio.open(scaled, "r+") as dst:
        dst.scales = [0.001] * BANDS
        dst.offsets = [0.1] * BANDS
    floats = stored.astype(np.float32) * np.float32(0.001) + np.float32(0.1)
    a = read(run(tmp_path, scaled, model, "a.tif")[0], 1)
    b = read(run(tmp_path, write_raster(tmp_path / "float.tif", floats), model, "b.tif")[0], 1)
    assert (a == b).all()
    raw = read(run(tmp_path, write_raster(tmp_path / "raw.tif", stored), model, "c.tif")[0], 1)
    assert (raw != a).any()  # ignoring the scale would give another map


def test_confidence_and_probabilities(tmp_path):
    model = make_model(tmp_path / "m.hsigan", class_ids=(2, 4, 9))
    data = cube()
    holes = nodata_holes()
    data[:, holes] = np.nan
    out, _ = run(tmp_path, write_raster(tmp_path / "in.tif", data, nodata=float("nan")), model, tile_size=20,
                 output_confidence=str(tmp_path / "conf.tif"), output_probabilities=str(tmp_path / "prob.tif"))
    labels, conf, prob = read(out, 1), read(tmp_path / "conf.tif", 1), read(tmp_path / "prob.tif")
    assert prob.shape == (3, H, W) and prob.dtype == np.float32
    ok = ~holes
    np.testing.assert_allclose(prob[:, ok].sum(0), 1.0, atol=1e-5)
    assert ((prob[:, ok] >= 0) & (prob[:, ok] <= 1)).all()
    np.testing.assert_allclose(conf[ok], prob[:, ok].max(0), atol=1e-6)
    assert (np.array([2, 4, 9])[prob[:, ok].argmax(0)] == labels[ok]).all()
    assert (conf[ok] >= 1 / 3 - 1e-6).all()
    assert (conf[holes] == -1).all() and (prob[:, holes] == -1).all()
    assert os.path.exists(tmp_path / "conf.qml")


def test_cog_output(tmp_path):
    from osgeo import gdal
    model = make_model(tmp_path / "m.hsigan")
    raster = write_raster(tmp_path / "in.tif", cube())
    plain = read(run(tmp_path, raster, model, "plain.tif")[0], 1)
    out, _ = run(tmp_path, raster, model, "cog.tif", cog=True, output_confidence=str(tmp_path / "cogc.tif"))
    for path in (out, str(tmp_path / "cogc.tif")):
        info = gdal.Info(path, format="json")
        assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG", info["metadata"]
        assert info["driverShortName"] == "GTiff"
    assert (read(out, 1) == plain).all()
    assert read_class_table(out)[3] == "c3"


def test_other_output_format(tmp_path):
    model = make_model(tmp_path / "m.hsigan")
    raster = write_raster(tmp_path / "in.tif", cube())
    plain = read(run(tmp_path, raster, model, "plain.tif")[0], 1)
    out, _ = run(tmp_path, raster, model, "map.img", output_confidence=str(tmp_path / "conf.img"))
    with rasterio.open(out) as dst:
        assert dst.driver == "HFA" and dst.dtypes[0] == "uint8"
        assert (dst.read(1) == plain).all()
    assert rasterio.open(tmp_path / "conf.img").driver == "HFA"
    assert read_class_table(out)[2] == "c2"


def test_bad_bands_recorded_and_ignored(tmp_path):
    """A band nodata (NaN) everywhere and a constant one: training records them as bad bands; inference
    ignores them, so values appearing in them later change nothing, and no pixel is lost to them."""
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train
    with rasterio.open(RASTER) as src:
        data, profile = src.read().astype(np.float32), src.profile
    data[3] = np.nan
    data[7] = 42.0
    train_raster = write_raster(tmp_path / "bad.tif", data, crs=profile["crs"], transform=profile["transform"],
                                nodata=float("nan"))
    model = str(tmp_path / "bad.hsigan")
    result = train(TrainConfig(input=train_raster, labels=TRAIN_LABELS, class_field="class_name",
                               output_model=model, epochs=2, gan="none", samples_per_class=30,
                               seed=0))
    assert result.metadata["bad_bands"] == [3, 7]
    assert model_file.load(model, with_tensors=False)[0]["bad_bands"] == [3, 7]
    a = read(run(tmp_path, train_raster, model, "a.tif", tile_size=40)[0], 1)
    assert (a > 0).all()
    noisy = data.copy()
    rng = np.random.default_rng(1)
    noisy[3] = rng.normal(size=noisy[3].shape) * 1000
    noisy[7] = rng.normal(size=noisy[7].shape) * 1000
    other = write_raster(tmp_path / "noisy.tif", noisy, crs=profile["crs"], transform=profile["transform"])
    b = read(run(tmp_path, other, model, "b.tif")[0], 1)
    assert (a == b).all()
