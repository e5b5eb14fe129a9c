"""hsigan:export_onnx / bin/hsigan export-onnx: the exported ONNX model, run by onnxruntime tile by tile as
Deepness runs it (values / 255, then the metadata's standardisation; tiles overlapping by 2r), gives
hsigan:classify's map; its metadata is what Deepness reads; bad inputs end in one clear message."""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import RASTER, ROOT

pytest.importorskip("onnxruntime")
HSIGAN = os.path.join(ROOT, "bin", "hsigan")


def export(model, output, *extra):
    return subprocess.run([HSIGAN, "export-onnx", "--quiet", "--model", model, "--output", str(output), *extra],
                          capture_output=True, text=True, timeout=300)


def onnx_map(onnx_path, raster):
    """The class map of `raster` by the ONNX model alone, fed as Deepness feeds it: fixed T x T tiles from
    the metadata, standardised with standardization_mean/std after dividing by 255, consecutive tiles
    overlapping by 2 x halo and only each tile's centre kept. Tiles at the raster's edge get their halo by
    reflection (hsigan's edge rule) and are filled up to T with zeros; invalid pixels enter as 0."""
    import onnxruntime as ort

    from hsigan_qgis.export_onnx import standardise_like_deepness
    from hsigan_qgis.raster import open_raster, read_window

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    tile, halo = json.loads(props["tile_size"]), json.loads(props["hsigan_halo"])
    ids = np.asarray(json.loads(props["hsigan_class_ids"]))
    step = tile - 2 * halo
    with open_raster(raster) as dataset:
        labels = np.zeros((dataset.height, dataset.width), dtype=np.int64)
        windows, blocks = [], []
        for row in range(0, dataset.height, step):
            for col in range(0, dataset.width, step):
                h, w = min(step, dataset.height - row), min(step, dataset.width - col)
                data, valid = read_window(dataset, row, col, h, w, halo=halo)
                x = standardise_like_deepness(data, props)
                x[:, ~valid] = 0.0
                block = np.zeros((dataset.count, tile, tile), dtype=np.float32)
                block[:, :h + 2 * halo, :w + 2 * halo] = x
                windows.append((row, col, h, w))
                blocks.append(block)
    probabilities = session.run(None, {session.get_inputs()[0].name: np.stack(blocks)})[0]  # one batch
    for (row, col, h, w), p in zip(windows, probabilities):
        labels[row:row + h, col:col + w] = ids[p[:, halo:halo + h, halo:halo + w].argmax(0)]
    return labels


def assert_onnx_map_is_classify_map(model, tmp_path):
    """Exports `model` with 32 px tiles (4 x 4 tiles over the 86 x 83 sample) and checks the ONNX map equals
    classify's on every valid pixel; returns the ONNX file's path."""
    import rasterio

    from hsigan_qgis.config import ClassifyConfig
    from hsigan_qgis.classify import classify

    onnx_path = tmp_path / "salinas.onnx"
    done = export(model, onnx_path, "--tile-size", "32")
    assert done.returncode == 0, done.stderr
    classify(ClassifyConfig(input=RASTER, model=model, output=str(tmp_path / "map.tif"), device="cpu"))
    with rasterio.open(tmp_path / "map.tif") as src:
        expected = src.read(1)
    valid = expected != 0
    assert valid.mean() > 0.99
    got = onnx_map(str(onnx_path), RASTER)
    assert np.array_equal(got[valid], expected[valid].astype(np.int64)), \
        f"{int((got[valid] != expected[valid]).sum())} pixels differ"
    assert len(np.unique(expected[valid])) >= 4  # a map with several classes, not a constant
    return onnx_path


def test_onnx_model_with_a_windowed_kernel_head_gives_the_map_of_classify(tmp_path):
    """SPECTRAL_HEAD_WINDOW 5x5: the head's local mean (an average pool) exports and runs in onnxruntime."""
    from conftest import FAST, TRAIN_LABELS
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    model = str(tmp_path / "windowed.hsigan")
    train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=model,
                      **dict(FAST, spectral_head_window="5x5", spectral_head_weight=0.7)))
    assert_onnx_map_is_classify_map(model, tmp_path)


def test_onnx_model_with_smoothing_gives_the_map_of_classify(tmp_path):
    """SMOOTHING 5x5: the box mean over valid pixels (models/smoothing.py) exports, and the halo Deepness is told
    (hsigan_halo, tiles_overlap) grows by 2 px, so the tiled ONNX map is still classify's."""
    from conftest import FAST, TRAIN_LABELS
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    model = str(tmp_path / "smoothed.hsigan")
    train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=model,
                      **dict(FAST, smoothing="5x5")))
    onnx_path = assert_onnx_map_is_classify_map(model, tmp_path)
    import onnx
    props = {p.key: json.loads(p.value) for p in onnx.load(str(onnx_path)).metadata_props}
    assert props["hsigan_halo"] == 3 + 2 and props["tiles_overlap"] * 32 / 100 >= 2 * 5


def test_onnx_model_gives_the_map_of_classify(trained_model, tmp_path):
    import onnx

    from hsigan_qgis import model_file

    model, _ = trained_model
    onnx_path = assert_onnx_map_is_classify_map(model, tmp_path)

    # What Deepness reads (JSON texts), and what it takes for the input
    metadata, _ = model_file.load(model)
    saved = onnx.load(str(onnx_path))
    props = {p.key: json.loads(p.value) for p in saved.metadata_props}
    assert props["model_type"] == "Segmentor"
    assert props["class_names"] == {str(k): n for k, n in enumerate(metadata["class_names"])}
    assert props["tile_size"] == 32 and props["tiles_overlap"] * 32 / 100 >= 2 * (metadata["patch_size"] // 2)
    assert np.allclose(np.asarray(props["standardization_mean"]) * 255, metadata["mean"])
    assert np.allclose(np.asarray(props["standardization_std"]) * 255, metadata["std"])
    assert props["hsigan_class_ids"] == metadata["class_ids"]
    assert props["hsigan_class_colours"] == metadata["class_colours"]
    assert props["hsigan_bands"] == metadata["bands"] and props["hsigan_patch_size"] == metadata["patch_size"]
    assert "resolution" not in props
    dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in (saved.graph.input[0], saved.graph.output[0])]
    assert dims == [["batch", metadata["bands"], 32, 32], ["batch", len(metadata["class_ids"]), 32, 32]]


@pytest.mark.qgis
def test_export_onnx_algorithm_in_qgis(trained_model, processing_run, tmp_path):
    import onnx
    model, _ = trained_model
    result = processing_run("hsigan:export_onnx", {"MODEL": model, "TILE_SIZE": 64, "RESOLUTION": 370,
                                                   "OUTPUT": str(tmp_path / "m.onnx")})
    assert result["OUTPUT"] == str(tmp_path / "m.onnx")
    props = {p.key: json.loads(p.value) for p in onnx.load(result["OUTPUT"]).metadata_props}
    assert props["tile_size"] == 64 and props["resolution"] == 370.0 and props["model_type"] == "Segmentor"


@pytest.mark.qgis
def test_export_onnx_bad_inputs_say_which_and_write_nothing(trained_model, tmp_path, processing_run):
    from qgis.core import QgsProcessingException
    model, _ = trained_model
    missing = export(str(tmp_path / "none.hsigan"), tmp_path / "a.onnx")
    assert missing.returncode == 2 and "MODEL" in missing.stderr and "does not exist" in missing.stderr
    wrong_name = export(model, tmp_path / "a.txt")
    assert wrong_name.returncode == 2 and "OUTPUT" in wrong_name.stderr and ".onnx" in wrong_name.stderr
    no_folder = export(model, tmp_path / "no" / "a.onnx")
    assert no_folder.returncode == 2 and "does not exist" in no_folder.stderr
    not_a_model = tmp_path / "fake.hsigan"
    not_a_model.write_bytes(os.urandom(2048))
    assert export(str(not_a_model), tmp_path / "a.onnx").returncode == 2
    too_small = export(model, tmp_path / "a.onnx", "--tile-size", "8")
    assert too_small.returncode == 2 and "tile-size" not in too_small.stdout
    assert sorted(os.listdir(tmp_path)) == ["fake.hsigan"]  # nothing written, no temporary left
    with pytest.raises(QgsProcessingException, match="MODEL"):
        processing_run("hsigan:export_onnx", {"MODEL": str(tmp_path / "none.hsigan"), "OUTPUT": str(tmp_path / "b.onnx")})
    # a failed export keeps the previous file
    good = tmp_path / "keep.onnx"
    good.write_bytes(b"previous")
    assert export(str(not_a_model), good).returncode == 2 and good.read_bytes() == b"previous"
