"""Shared fixtures: paths, a fast model trained once on the Salinas-A sample, small rasters written on
the fly, and a real headless QGIS (QgsApplication + Processing + the HSI-GAN provider)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

SAMPLE = os.path.join(ROOT, "sample_data")
RASTER = os.path.join(SAMPLE, "salinas_a.tif")
TRAIN_LABELS = os.path.join(SAMPLE, "salinas_a_train.gpkg")
REFERENCE = os.path.join(SAMPLE, "salinas_a_reference.gpkg")
SHARED = os.path.join(ROOT, "..", "shared", "data")
QGIS_PROCESS = os.path.join(ROOT, "bin", "qgis-process")



def pytest_configure(config):
    config.addinivalue_line("markers", "qgis: needs QGIS (in-process QgsApplication, qgis_process or its dialogs); "
                                       "pytest -m 'not qgis' runs the engine tests alone")
    config.addinivalue_line("markers", "slow: takes more than a minute (e.g. installs torch); -m 'not slow' skips it")
    config.addinivalue_line("markers", "hostile: a bad-input, hostile-file or fault case (issue 10: at least "
                                       "100 of them); pytest -m hostile runs them")


def pytest_collection_modifyitems(config, items):
    """A test that uses the in-process QGIS (the qgis_app fixture, also through processing_run) is a QGIS
    test; tests that start qgis_process are marked where they are written."""
    for item in items:
        if "qgis_app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.qgis)


# Fast settings that still learn Salinas-A well; tests that need the GAN say so.
FAST = dict(epochs=8, gan="none", gan_steps=20, seed=0)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """A model trained once on all Salinas-A training pixels (no GAN, few epochs)."""
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train
    path = str(tmp_path_factory.mktemp("model") / "salinas.hsigan")
    result = train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path, **FAST))
    return path, result


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """(model path, raster path) trained once, by the engine, on the synthetic scene of the error tests
    (wavelengths tagged)."""
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train
    from errors_helpers import FAST as TINY, WAVELENGTHS, scene, stripe_features, tag_wavelengths, write_labels
    folder = tmp_path_factory.mktemp("small_model")
    raster = scene(folder / "scene.tif")
    tag_wavelengths(raster, WAVELENGTHS)
    gpkg = write_labels(folder / "labels.gpkg", stripe_features())
    model = str(folder / "small.hsigan")
    train(TrainConfig(input=raster, labels=gpkg, class_field="cls", output_model=model, **TINY))
    return model, raster


def write_raster(path, data, crs="EPSG:32610", transform=None, nodata=None, driver="GTiff", **extra):
    """data (bands, h, w) -> raster file; returns path."""
    import rasterio
    from rasterio.transform import from_origin
    transform = transform or from_origin(615000.0, 4063000.0, 3.7, 3.7)
    with rasterio.open(path, "w", driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, **extra) as dst:
        dst.write(data)
    return str(path)


def sample_cube():
    import rasterio
    with rasterio.open(RASTER) as src:
        return src.read(), src.transform, src.crs


def run_qgis_process(*args, timeout=600):
    """bin/qgis-process with args; returns CompletedProcess (text)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def qgis_app():
    """A headless QgsApplication with Processing and the HSI-GAN provider registered."""
    from qgis.core import QgsApplication
    sys.path.append("/usr/share/qgis/python/plugins")
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    from hsigan_qgis import plugin_package
    provider = plugin_package.provider()  # the plugin as QGIS imports it: package hsigan
    QgsApplication.processingRegistry().addProvider(provider)
    yield app
    QgsApplication.processingRegistry().removeProvider(provider)


@pytest.fixture
def processing_run(qgis_app):
    """processing.run with a fresh context; returns the results dict."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    def run(algorithm, parameters, feedback=None, context=None):
        context = context or QgsProcessingContext()
        context.setProject(QgsProject.instance())
        return processing.run(algorithm, parameters, feedback=feedback or QgsProcessingFeedback(), context=context)
    return run
