"""Helpers of the classify tests (test_classify.py, test_accuracy_options.py, test_dask.py): small synthetic
rasters, hand-made models, classify() and the patch-per-pixel reference it must equal."""
import numpy as np
import rasterio

from hsigan_qgis import model_file
from hsigan_qgis.config import ClassifyConfig
from hsigan_qgis.classify import classify
from hsigan_qgis.feedback import Feedback
from hsigan_qgis.predict import load_classifier
from hsigan_qgis.raster import open_raster, read_window
from hsigan_qgis.sampling import Normalisation, gather_patches

BANDS, H, W = 6, 41, 53


class Log(Feedback):
    """Engine feedback that keeps the log lines (warnings arrive as info lines starting 'Warning: ')."""

    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(text)


def make_model(path, bands=BANDS, class_ids=(1, 2, 3, 4), patch_size=5, seed=0, mean=0.0, std=1.0,
               bad_bands=()):
    """A model file with random (but fixed) narrow layers, batch-norm statistics from a calibration pass."""
    import torch
    from models.classifier import SpectralSpatialNet

    torch.manual_seed(seed)
    net = SpectralSpatialNet(bands, len(class_ids), patch_size, width=16, spectral_width=16)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # batch-norm statistics of one calibration pass
    with torch.no_grad():
        net.train()(torch.from_numpy(cube(seed=99, bands=bands))[None])
        net.head.bias.zero_()
        net.head.weight.mul_(3)  # logits spread enough that every class shows up
    state = net.state_dict()
    metadata = dict(bands=bands, class_ids=list(class_ids), class_names=[f"c{i}" for i in class_ids],
                    class_colours=["#%02x%02x%02x" % (40 * k % 256, 90 * k % 256, 150) for k in range(len(class_ids))],
                    mean=[float(mean)] * bands, std=[float(std)] * bands, bad_bands=list(bad_bands),
                    patch_size=patch_size, wavelengths=None,
                    architecture=dict(name="SpectralSpatialNet", bands=bands, classes=len(class_ids),
                                      patch_size=patch_size))
    model_file.save(str(path), metadata, {"classifier": state})
    return str(path)


def cube(seed=0, bands=BANDS, h=H, w=W):
    """Spatially smooth random spectra (so neighbourhoods matter) as float32."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(bands, h, w)).astype(np.float32)
    return ndimage.gaussian_filter(data, sigma=(0, 1.5, 1.5)).astype(np.float32) * 3


def run(tmp_path, raster, model, name="map.tif", tuning=None, **kw):
    """classify(); without TTA unless asked (these tests compare with the plain patch-per-pixel net).
    tuning: classify's keyword arguments for benchmarks (read_threads, ...)."""
    kw.setdefault("tta", False)
    out = str(tmp_path / name)
    result = classify(ClassifyConfig(input=str(raster), model=str(model), output=out, **kw), **(tuning or {}))
    return out, result


def read(path, band=None):
    with rasterio.open(path) as src:
        return src.read(band) if band else src.read()


def patch_labels(model, raster):
    """Reference: the classifier on the PxP patch around every pixel (training's gather_patches path),
    edges reflected as in training. Returns (class ids with 0 for nodata, top-2 logit margin)."""
    import torch
    metadata, tensors = model_file.load(model)
    net = load_classifier(metadata, tensors, torch.device("cpu"))
    r = metadata["patch_size"] // 2
    with open_raster(raster) as ds:
        data, valid = read_window(ds, 0, 0, ds.height, ds.width, r, skip_bands=metadata.get("bad_bands", []))
        h, w = ds.height, ds.width
    Normalisation(metadata["mean"], metadata["std"], metadata.get("bad_bands", [])).apply(data, valid)
    rows, cols = np.mgrid[:h, :w]
    with torch.no_grad():
        x = gather_patches(torch.from_numpy(data), rows.ravel(), cols.ravel(), r)
        logits = net(x).flatten(1)
    top = logits.topk(2, dim=1).values
    ids = np.asarray(metadata["class_ids"])[logits.argmax(1).numpy()].reshape(h, w)
    ids[~valid[r:r + h, r:r + w]] = 0
    return ids, (top[:, 0] - top[:, 1]).numpy().reshape(h, w)


def assert_same_labels(got, want, margin):
    """Equal labels; a difference is only tolerated at a float near-tie (top-2 logits within 1e-4)."""
    differ = got != want
    assert not (differ & (margin > 1e-4)).any(), f"{differ.sum()} labels differ"
