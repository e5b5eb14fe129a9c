"""SMOOTHING: the class probabilities averaged over a box (models/smoothing.py, hsigan_qgis/smoothing_choice.py).
The smoothed map is the arg-max of the box mean of the unsmoothed model's probabilities over valid pixels, the
same whatever the tiles, with TTA, and in the training's validation; auto smooths only on clear evidence."""
import json

import numpy as np
import pytest

from conftest import FAST, RASTER, TRAIN_LABELS


def box_mean(probabilities, valid, box):
    """Reference: the mean of (C, H, W) probabilities over each box x box window's valid pixels (scipy);
    rows and columns outside the array count as invalid."""
    from scipy import ndimage

    weight = valid.astype(np.float64)
    num = np.stack([ndimage.uniform_filter(p * weight, box, mode="constant") for p in probabilities])
    return num / np.maximum(ndimage.uniform_filter(weight, box, mode="constant"), 1e-12)


def test_box_mean_runs_over_the_valid_pixels_only():
    """BoxSmoothed on a batch with a hole of zeroed (invalid) pixels: the scipy box mean of the inner model's
    probabilities, weighted by validity; its radius grows by half the box."""
    import torch

    from models.classifier import SpectralSpatialNet
    from models.smoothing import BoxSmoothed

    torch.manual_seed(0)
    net = SpectralSpatialNet(6, 4, 5).eval()
    with torch.no_grad():  # sharper class probabilities than a fresh network's (about 1/4 each)
        net.head.weight.mul_(100.0)
    x = torch.randn(1, 6, 30, 30)
    x[:, :, 10:16, 12:20] = 0.0  # pixels without data, as classify hands them over
    smoothed = BoxSmoothed(net, 5)
    assert smoothed.radius == net.radius + 2
    with torch.no_grad():
        inner = torch.softmax(net(x), 1)[0].double().numpy()  # (4, 26, 26)
        got = torch.exp(smoothed(x))[0].double().numpy()  # (4, 22, 22)
    valid = (x[0, :, 2:28, 2:28].abs().amax(0) > 0).numpy()
    expected = box_mean(inner, valid, 5)[:, 2:-2, 2:-2]
    assert got.shape == expected.shape == (4, 22, 22)
    from scipy import ndimage
    voters = ndimage.uniform_filter(valid.astype(float), 5, mode="constant")[2:-2, 2:-2] > 0.01  # not the hole's middle
    assert np.abs(got - expected)[:, voters].max() < 1e-6 and inner.max() > 0.6 and (~voters).any()
    assert not np.allclose(got, box_mean(inner, np.ones_like(valid), 5)[:, 2:-2, 2:-2], atol=1e-3)  # the hole counts
    with pytest.raises(ValueError):
        BoxSmoothed(net, 4)


@pytest.mark.parametrize("b, c, chosen", [(12, 3, 5), (6, 3, 1)])
def test_automatic_box_needs_a_sign_test_at_1_64(b, c, chosen):
    """5x5 right on b validation pixels where no smoothing is wrong and wrong on c where it is right: z = 2.32
    smooths, z = 1.00 does not (3x3 agrees with no smoothing everywhere)."""
    from hsigan_qgis.smoothing_choice import automatic_box

    labels = np.zeros(100, dtype=np.int64)
    plain = labels.copy()
    plain[:b] = 1  # wrong where 5x5 is right
    five = labels.copy()
    five[b:b + c] = 1  # wrong where plain is right
    box, why = automatic_box({1: plain, 3: plain.copy(), 5: five}, labels)
    assert box == chosen
    assert f"5x5 right on {b} where no smoothing is wrong and wrong on {c} where no smoothing is right" in why


@pytest.fixture(scope="module")
def twin_models(tmp_path_factory):
    """The same training (seed, pixels, network, head) with SMOOTHING off and 5x5, and a raster with a hole of
    nodata: the sample with nodata 0 and a 6 x 9 px square zeroed."""
    import rasterio

    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    folder = tmp_path_factory.mktemp("smoothing")
    models = {}
    for name in ("off", "5x5"):
        models[name] = str(folder / f"{name}.hsigan")
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=models[name],
                          samples_per_class=15, smoothing=name, **FAST))
    with rasterio.open(RASTER) as src:
        profile, data = src.profile, src.read()
    data[:, 40:46, 30:39] = 0
    holed = str(folder / "holed.tif")
    with rasterio.open(holed, "w", **dict(profile, nodata=0)) as dst:
        dst.write(data)
    off, _ = model_file.load(models["off"])
    five, _ = model_file.load(models["5x5"])
    assert off["smoothing"] == {"box": 1, "chosen": "SMOOTHING"} and off["format_version"] == 1
    # a plugin that reads only format 1 refuses a smoothed model instead of classifying it unsmoothed
    assert five["smoothing"] == {"box": 5, "chosen": "SMOOTHING"} and five["format_version"] == 2
    return models, holed


def classify_to(model, raster, output, **settings):
    import rasterio

    from hsigan_qgis.classify import classify
    from hsigan_qgis.config import ClassifyConfig

    classify(ClassifyConfig(input=raster, model=model, output=output, device="cpu", **settings))
    with rasterio.open(output) as src:
        return src.read()


def test_smoothed_map_is_the_box_mean_of_the_plain_probabilities_whatever_the_tiles(twin_models, tmp_path):
    """classify with the 5x5 model gives, at every pixel 2 px or more inside the raster, the arg-max of the box
    mean of the plain model's probabilities over valid pixels (the hole's pixels do not vote and stay nodata);
    the same map with 16 px, 37 px and automatic tiles, and with TTA at both tile sizes."""
    import rasterio

    from hsigan_qgis import model_file

    models, holed = twin_models
    plain_map = classify_to(models["off"], holed, str(tmp_path / "off.tif"),
                            output_probabilities=str(tmp_path / "p.tif"))[0]
    with rasterio.open(tmp_path / "p.tif") as src:
        plain = src.read().astype(np.float64)
    ids = np.asarray(model_file.load(models["off"], with_tensors=False)[0]["class_ids"])
    valid = plain_map != 0
    maps = {t: classify_to(models["5x5"], holed, str(tmp_path / f"t{t}.tif"), tile_size=t)[0] for t in (0, 16, 37)}
    assert all(np.array_equal(maps[0], m) for m in maps.values())
    smoothed = box_mean(np.where(valid, plain, 0.0), valid, 5)
    order = np.sort(smoothed, axis=0)
    clear = (order[-1] - order[-2] > 1e-5)[2:-2, 2:-2] & valid[2:-2, 2:-2]  # no near-tie between two classes
    expected = ids[smoothed.argmax(0)]
    assert np.array_equal(maps[0][2:-2, 2:-2][clear], expected[2:-2, 2:-2][clear])
    assert clear.mean() > 0.9 and (maps[0] != plain_map).sum() > 0  # smoothing changed the map
    assert (maps[0][40:46, 30:39] == 0).all() and (maps[0][valid] != 0).all()
    turned = [classify_to(models["5x5"], holed, str(tmp_path / f"tta{t}.tif"), tile_size=t, tta=True,
                          output_probabilities=str(tmp_path / f"ttap{t}.tif"),
                          output_confidence=str(tmp_path / f"ttac{t}.tif"))[0] for t in (16, 37)]
    assert np.array_equal(turned[0], turned[1])
    with rasterio.open(tmp_path / "ttap16.tif") as src:  # TTA's smoothed probabilities, written (run 14 on an H100
        turned_probabilities = src.read()  # found them refused: an inference tensor updated in place)
    with rasterio.open(tmp_path / "ttac16.tif") as src:
        turned_confidence = src.read(1)
    assert np.array_equal(turned[0][valid], ids[turned_probabilities.argmax(0)][valid])
    assert np.array_equal(turned_confidence[valid], turned_probabilities.max(0)[valid])
    assert np.allclose(turned_probabilities[:, valid].sum(0), 1.0, atol=1e-5)


def model_with_box(model, box, path):
    """A copy of a smoothed model file (format version 2) that declares another smoothing box."""
    import zipfile
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata["smoothing"]["box"] = box
                data = json.dumps(metadata).encode()
            dst.writestr(info, data)
    return path


def test_validation_reads_the_neighbours_as_classify_does(twin_models, tmp_path):
    """smoothing_choice.validation_predictions (the raster read again around validation blocks, the network
    run once and its probabilities averaged over each box) predicts what classify's map of the model with that
    box says at those pixels, at the raster's edges and beside the hole too, for every candidate box."""
    import torch

    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.predict import load_classifier
    from hsigan_qgis.sampling import Normalisation, PixelSet
    from hsigan_qgis.smoothing_choice import validation_predictions

    models, holed = twin_models
    maps = {box: classify_to(model_with_box(models["5x5"], box, str(tmp_path / f"{box}.hsigan")), holed,
                             str(tmp_path / f"map{box}.tif"))[0] for box in (3, 5, 7)}
    maps[1] = classify_to(models["off"], holed, str(tmp_path / "plain.tif"))[0]
    metadata, tensors = model_file.load(models["off"])
    model = load_classifier(metadata, tensors, torch.device("cpu"))
    norm = Normalisation(metadata["mean"], metadata["std"], [int(b) for b in metadata["bad_bands"]])
    rows, cols = np.meshgrid(np.r_[0:83:7, 82, 39, 46], np.r_[0:86:7, 85, 29, 39], indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    keep = maps[5][rows, cols] != 0
    pixels = PixelSet(rows[keep], cols[keep], np.zeros(keep.sum(), dtype=np.int64))
    cfg = TrainConfig(input=holed, labels=TRAIN_LABELS, class_field="class_name", output_model="unused.hsigan")
    predicted = validation_predictions(cfg, model, pixels, norm, [1, 3, 5, 7], torch.device("cpu"), Feedback())
    ids = np.asarray(metadata["class_ids"])
    for box in (1, 3, 5, 7):
        assert np.array_equal(ids[predicted[box]], maps[box][pixels.rows, pixels.cols]), box
    assert not np.array_equal(maps[7], maps[1])  # the boxes give other maps: the comparison can fail


def test_auto_records_the_choice_and_a_sample_file_leaves_it_off(tmp_path):
    """SMOOTHING auto on the sample: the log, the model and the report say the box and the sign test's counts,
    and the validation note lists the smoothing; trained from a sample file (no raster), auto is off."""
    from classify_helpers import Log
    from hsigan_qgis import model_file
    from hsigan_qgis.augment import augment
    from hsigan_qgis.config import AugmentConfig, TrainConfig
    from hsigan_qgis.train import train

    log = Log()
    model = str(tmp_path / "auto.hsigan")
    train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=model,
                      output_report=str(tmp_path / "auto.html"), samples_per_class=15, smoothing="auto", **FAST), log)
    metadata, _ = model_file.load(model)
    smoothing = metadata["smoothing"]
    assert smoothing["box"] in (1, 3, 5, 7) and smoothing["chosen"].startswith("automatic, over ")
    assert "5x5 right on " in smoothing["chosen"] and "7x7 right on " in smoothing["chosen"]  # every candidate
    assert "the smoothing" in metadata["validation"]["chose"]
    assert any(line.startswith("Smoothing: ") and smoothing["chosen"] in line for line in log.lines)
    assert smoothing["chosen"][:40] in (tmp_path / "auto.html").read_text()
    samples = str(tmp_path / "s.hsamples")
    augment(AugmentConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output=samples,
                          count_per_class=4, samples_per_class=25, gan_steps=2))
    train(TrainConfig(samples=samples, output_model=str(tmp_path / "s.hsigan"), smoothing="auto", **FAST))
    metadata, _ = model_file.load(str(tmp_path / "s.hsigan"))
    assert metadata["smoothing"]["box"] == 1 and "sample file" in metadata["smoothing"]["chosen"]


@pytest.mark.parametrize("box", [4, 11, "5", None])
def test_a_model_file_with_an_invalid_box_is_refused(twin_models, tmp_path, box):
    from hsigan_qgis import model_file
    from hsigan_qgis.errors import InputError

    models, _ = twin_models
    crafted = model_with_box(models["5x5"], box, str(tmp_path / "crafted.hsigan"))
    with pytest.raises(InputError, match="smoothing box is not valid"):
        model_file.load(crafted)


@pytest.mark.parametrize("patch, smoothing, gap", [(3, "off", 1), (3, "5x5", 2), (3, "auto", 3), (3, "3x3", 1),
                                                   (5, "auto", 3), (3, "7x7", 3), (7, "auto", 3)])
def test_no_smoothing_box_reaches_a_training_pixel_from_a_validation_pixel(tmp_path, monkeypatch, patch, smoothing,
                                                                           gap):
    """The gap between training and validation blocks is the patch radius, or half the largest box SMOOTHING
    may use when that is larger, so the smoothing chosen on the validation pixels never averages in the
    predictions at training pixels."""
    from hsigan_qgis import sampling, train as train_module
    from hsigan_qgis.config import TrainConfig

    gaps = []
    choose = sampling.choose_labelled

    def recording(*args):
        gaps.append(args[8])
        return choose(*args)
    monkeypatch.setattr(sampling, "choose_labelled", recording)
    train_module.train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name",
                                   output_model=str(tmp_path / "m.hsigan"), samples_per_class=15, patch_size=patch,
                                   smoothing=smoothing, spectral_head=False, **dict(FAST, epochs=1)))
    assert gaps == [gap]
