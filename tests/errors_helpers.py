"""Helpers shared by the tests of issue 6 (bad input, faults, hostile files): a small synthetic scene,
label layers written with OGR, file hashing and the checks every failing run must pass. No tests here."""
import hashlib
import os

import numpy as np

from conftest import run_qgis_process, write_raster

# The synthetic scene: 6 bands, 24 x 24 pixels of 10 m in UTM 33N; three classes in vertical stripes.
EPSG = 32633
X0, Y0, PIXEL = 500000.0, 4000000.0, 10.0
BANDS, SIZE = 6, 24
CLASSES = ["Grass", "Water", "Soil"]
FAST = dict(epochs=2, gan="none", patch_size=3, validation_fraction=0.0, seed=0, batch_size=32, device="cpu")
QFAST = {"EPOCHS": 2, "GAN": 0, "PATCH_SIZE": 3, "VALIDATION_FRACTION": 0.0, "SEED": 0, "BATCH_SIZE": 32,
         "DEVICE": 1}


def cube(seed=0, bands=BANDS, size=SIZE, dtype="float32"):
    rng = np.random.default_rng(seed)
    spectra = np.array([[0.1 + 0.1 * b for b in range(bands)],
                        [0.6 - 0.08 * b for b in range(bands)],
                        [0.3 + 0.02 * (-1) ** b for b in range(bands)]])
    data = np.empty((bands, size, size), dtype="float64")
    for k in range(3):
        cols = slice(k * size // 3, (k + 1) * size // 3)
        data[:, :, cols] = spectra[k][:, None, None]
    data += rng.normal(0, 0.01, data.shape)
    if np.dtype(dtype).kind in "iu":
        data = data * 10000
    return data.astype(dtype)


def transform():
    from rasterio.transform import from_origin
    return from_origin(X0, Y0, PIXEL, PIXEL)


def scene(path, data=None, crs=f"EPSG:{EPSG}", nodata=None, **extra):
    data = cube() if data is None else data
    return write_raster(path, data, crs=crs, transform=transform(), nodata=nodata, **extra)


def px(col, row):
    """Map coordinates of the centre of pixel (col, row) of the scene."""
    return X0 + (col + 0.5) * PIXEL, Y0 - (row + 0.5) * PIXEL


def box(c0, r0, c1, r1, inset=0.0):
    """WKT polygon covering the centres of pixels [c0, c1) x [r0, r1) (its edges `inset` pixels inside)."""
    x0, y0 = X0 + (c0 + inset) * PIXEL, Y0 - (r0 + inset) * PIXEL
    x1, y1 = X0 + (c1 - inset) * PIXEL, Y0 - (r1 - inset) * PIXEL
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def stripe_features(field="cls", names=CLASSES):
    """One box well inside each class stripe."""
    third = SIZE // 3
    return [(box(k * third + 2, 3, (k + 1) * third - 2, SIZE - 3, inset=0.3), {field: names[k]}) for k in range(3)]


def reproject_wkt(wkt, epsg):
    """The WKT of a geometry in the scene's CRS, reprojected to EPSG:epsg (x/y axis order)."""
    from osgeo import ogr, osr
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(EPSG)
    target.ImportFromEPSG(epsg)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    geometry = ogr.CreateGeometryFromWkt(wkt)
    geometry.Segmentize(PIXEL / 4)
    geometry.Transform(osr.CoordinateTransformation(source, target))
    return geometry.ExportToWkt()


def point(col, row):
    x, y = px(col, row)
    return f"POINT({x} {y})"


class LogFeedback:
    """Engine feedback that records what it is told and can cancel after `cancel_after` progress calls."""

    def __init__(self, cancel_after=None):
        from hsigan_qgis.feedback import Feedback
        self.lines, self.calls, self.cancel_after = [], 0, cancel_after
        self.canceled = False
        outer = self

        class _F(Feedback):
            def progress(self, percent):
                outer.calls += 1
                if outer.cancel_after is not None and outer.calls >= outer.cancel_after:
                    outer.canceled = True

            def info(self, message):
                outer.lines.append(message)

            def is_canceled(self):
                return outer.canceled
        self.engine = _F()

    @property
    def text(self):
        return "\n".join(self.lines)


def qgis_feedback(cancel_after=None):
    """A QgsProcessingFeedback that keeps its log and calls cancel() after `cancel_after` progress reports,
    the way the Cancel button of the dialog does."""
    from qgis.core import QgsProcessingFeedback

    class Recording(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines, self.reports = [], 0

        def setProgress(self, percent):  # noqa: N802
            super().setProgress(percent)
            self.reports += 1
            if cancel_after is not None and self.reports >= cancel_after:
                self.cancel()

        def pushInfo(self, text):  # noqa: N802
            self.lines.append(text)
            super().pushInfo(text)

        def reportError(self, text, fatalError=False):  # noqa: N802,N803
            self.lines.append(text)
            super().reportError(text, fatalError)

        @property
        def text(self):
            return "\n".join(self.lines)
    return Recording()


def train_params(raster, labels, model, field="cls", **extra):
    return dict(QFAST, INPUT=raster, LABELS=labels, CLASS_FIELD=field, OUTPUT_MODEL=model, **extra)


def qgis_args(parameters):
    return [f"{k}={v}" for k, v in parameters.items()]


def read_tensors(model):
    from hsigan_qgis.model_file import load
    return load(model)[1]


def same_tensors(a, b):
    ta, tb = read_tensors(a), read_tensors(b)
    assert ta.keys() == tb.keys()
    for module in ta:
        assert ta[module].keys() == tb[module].keys()
        for name in ta[module]:
            if ta[module][name].tobytes() != tb[module][name].tobytes():
                return False
    return True


def read_map(path):
    import rasterio
    with rasterio.open(path) as dataset:
        return dataset.read(1), dataset.dtypes[0]


def write_labels(path, features, epsg=EPSG, field_types=None, layer="labels", srs_wkt=None):
    """features: [(wkt, {field: value})] -> vector file (driver from the extension); returns path.
    field_types: {field: 'int'|'real'|'str'} (guessed from the first non-None value otherwise);
    epsg None writes a layer without CRS."""
    from osgeo import ogr, osr
    driver = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".shp": "ESRI Shapefile"}[os.path.splitext(str(path))[1]]
    if os.path.exists(path):
        ogr.GetDriverByName(driver).DeleteDataSource(str(path))
    source = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    srs = None
    if srs_wkt:
        srs = osr.SpatialReference(wkt=srs_wkt)
    elif epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
    out = source.CreateLayer(layer, srs, ogr.wkbUnknown)
    names = list(field_types or {})  # fields of an empty layer too
    for _, attributes in features:
        for key in attributes:
            if key not in names:
                names.append(key)
    kinds = dict(field_types or {})
    for name in names:
        if name not in kinds:
            sample = next((a[name] for _, a in features if a.get(name) is not None), "")
            kinds[name] = "int" if isinstance(sample, (int, np.integer)) else "real" if isinstance(sample, float) else "str"
        out.CreateField(ogr.FieldDefn(name, {"int": ogr.OFTInteger, "int64": ogr.OFTInteger64, "real": ogr.OFTReal,
                                            "str": ogr.OFTString}[kinds[name]]))
    for wkt, attributes in features:
        feature = ogr.Feature(out.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        for name, value in attributes.items():
            if value is None:
                feature.SetFieldNull(name)
            else:
                feature.SetField(name, value)
        out.CreateFeature(feature)
    source = None
    return str(path)


def digest(*paths, sidecars=False):
    """{path: sha256} of files, to show inputs are unmodified. sidecars=True also covers the .aux.xml that
    GDAL may write beside a raster (QGIS itself writes one with the statistics of its default renderer
    whenever it opens a raster layer, so only engine-level tests ask for it)."""
    out = {}
    for path in paths:
        for p in (str(path), str(path) + ".aux.xml") if sidecars else (str(path),):
            if os.path.exists(p):
                with open(p, "rb") as stream:
                    out[p] = hashlib.sha256(stream.read()).hexdigest()
            else:
                out[p] = None
    return out


def listing(folder):
    """The files of a folder, less the .aux.xml that QGIS writes beside rasters it opens (see digest)."""
    names = set(os.listdir(folder))
    return sorted(n for n in names if not (n.endswith(".aux.xml") and n[:-8] in names))


def qgis_fails(algorithm, parameters, must_name, folder=None, allowed_new=()):
    """Runs bin/qgis-process; asserts a non-zero exit, the parameter named, no traceback, and (when folder
    is given) nothing new left in folder. Returns stdout + stderr."""
    before = set(os.listdir(folder)) if folder else None
    args = qgis_args(parameters)
    done = run_qgis_process("run", algorithm, "--", *args)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text
    assert must_name in text, text
    assert "Traceback" not in text, text
    if folder:
        new = set(os.listdir(folder)) - before - set(allowed_new)
        # QGIS writes the statistics of its default renderer beside a raster it opens (see digest)
        new = {n for n in new if not (n.endswith(".aux.xml") and n[:-8] in before)}
        assert not new, (new, text)
    return text


def qgis_error(processing_run, algorithm, parameters, feedback=None):
    """processing.run that must fail; returns the QgsProcessingException's message."""
    import pytest
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException) as caught:
        processing_run(algorithm, parameters, feedback=feedback)
    message = str(caught.value)
    assert "Traceback" not in message, message
    return message


WAVELENGTHS = [450.0, 550.0, 650.0, 750.0, 850.0, 950.0]


def tag_wavelengths(path, wavelengths):
    import rasterio
    with rasterio.open(path, "r+") as dataset:
        for band, value in enumerate(wavelengths, start=1):
            dataset.update_tags(band, wavelength=str(value))
    return path


FAULTS = {
    # every GAN critic loss is NaN
    "gan-nan": "import models.losses as m\nm.critic_loss = lambda r, f: (f.mean() - r.mean()) * float('nan')\n",
    # the classifier cannot allocate memory for inputs of more than 400 pixels (see test_errors_runs.fake_oom)
    "oom": ("import models.classifier as m\n_forward = m.SpectralSpatialNet.forward\n"
            "def forward(self, x):\n"
            "    if x.shape[0] * x.shape[-2] * x.shape[-1] > 400:\n"
            "        raise RuntimeError('DefaultCPUAllocator: can\\'t allocate memory: you tried to allocate 1 bytes')\n"
            "    return _forward(self, x)\n"
            "m.SpectralSpatialNet.forward = forward\n"),
    # a plain bug in the engine, one that errors.translate does not know
    "bug": ("import hsigan_qgis.classify as i\n"
            "def _classify(*args, **kwargs):\n"
            "    raise ZeroDivisionError('planted bug')\n"
            "i._classify = _classify\n"),
    # not a fault: a file appears when training starts, so a test knows when to press Ctrl+C
    "started": ("import os\nimport hsigan_qgis.training as t\n_seed = t.seed_everything\n"
                "def seed_everything(seed):\n"
                "    _seed(seed)\n"
                "    open(os.environ['HSIGAN_TEST_STARTED'], 'w').close()\n"
                "t.seed_everything = seed_everything\n"),
}


def fault_env(fault, folder):
    """Environment for bin/qgis-process with a fault injected into its Python: a sitecustomize module on
    PYTHONPATH that patches the engine as the monkeypatch of the in-process tests does. The plugin package is
    loaded there first (plugin_package.load), so the engine QGIS runs is the one the fault patches."""
    from conftest import ROOT
    hook = os.path.join(str(folder), "fault_hook")
    os.makedirs(hook, exist_ok=True)
    with open(os.path.join(hook, "sitecustomize.py"), "w") as stream:
        stream.write(f"import sys\nsys.path.insert(0, {ROOT!r})\nfrom hsigan_qgis import plugin_package\n"
                     "plugin_package.load()\n" + FAULTS[fault])
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=hook,
                HSIGAN_TEST_STARTED=os.path.join(str(folder), "started"))


def run_qgis_process_with_fault(fault, folder, *args, timeout=600):
    import subprocess
    from conftest import QGIS_PROCESS
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, timeout=timeout,
                          env=fault_env(fault, folder))
