"""hsigan:classify on a Dask cluster (loopback only, CPU): the same map as one machine, a killed worker
replaced without changing the map, cancel stops the cluster's work and leaves no output, clear messages
for bad addresses and a missing dask."""
import os
import signal
import time

import pytest

from conftest import write_raster
from classify_helpers import cube, make_model, read
from hsigan_qgis.config import ClassifyConfig
from hsigan_qgis.errors import Cancelled, InputError
from hsigan_qgis.feedback import Feedback
from hsigan_qgis.classify import classify

distributed = pytest.importorskip("distributed")
SIZE = (100, 90)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    model = make_model(folder / "m.hsigan", patch_size=7)
    raster = write_raster(folder / "in.tif", cube(h=SIZE[0], w=SIZE[1]))
    reference = str(folder / "reference.tif")
    classify(ClassifyConfig(input=raster, model=model, output=reference,
                            output_confidence=str(folder / "reference_conf.tif")))
    return model, raster, read(reference, 1), read(str(folder / "reference_conf.tif"), 1)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on this machine, each behind a nanny that restarts it when it dies. The test
    process holds no client of its own while classify runs (two clients in one process with their own event
    loops trip up Dask when a result is lost with its worker)."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def worker_pids(local):
    return {nanny.pid for nanny in local.workers.values() if nanny.pid}


class Hook(Feedback):
    """Engine feedback that calls `action` once, when the first chunk has been written."""

    def __init__(self, action):
        self.action, self.called, self.cancelled = action, False, False

    def progress(self, percent):
        if 0 < percent < 100 and not self.called:
            self.called = True
            self.action(self)

    def is_canceled(self):
        return self.cancelled


def test_local_cluster_from_the_command_line_gives_the_same_map(scene, tmp_path):
    from hsigan_qgis.cli import main
    model, raster, reference, reference_conf = scene
    out, conf = str(tmp_path / "map.tif"), str(tmp_path / "conf.tif")
    assert main(["classify", "--input", raster, "--model", model, "--output", out, "--output-confidence", conf,
                 "--tile-size", "32", "--dask", "local:2", "--quiet"]) == 0
    assert (read(out, 1) == reference).all() and (reference > 0).all()
    # the map is identical; the confidence agrees to float rounding (workers compute with one torch thread)
    assert abs(read(conf, 1) - reference_conf).max() < 1e-5
    with __import__("rasterio").open(out) as dst:
        assert dst.colormap(1)[2][:3] == (40, 90, 150) and dst.tags()["HSIGAN_CLASSES"].startswith("1=c1")


def test_a_killed_worker_is_replaced_and_the_map_is_complete(scene, cluster, tmp_path):
    model, raster, reference, _ = scene
    killed = []

    def kill_a_worker(_):
        pid = sorted(worker_pids(cluster))[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    out = str(tmp_path / "map.tif")
    classify(ClassifyConfig(input=raster, model=model, output=out, tile_size=16, dask=cluster.scheduler_address),
             Hook(kill_a_worker))
    assert killed
    assert (read(out, 1) == reference).all()
    deadline = time.time() + 180  # a new worker process imports torch: slow on a busy machine
    while time.time() < deadline and (len(worker_pids(cluster)) < 2 or killed[0] in worker_pids(cluster)):
        time.sleep(0.5)
    pids = worker_pids(cluster)
    assert len(pids) == 2 and killed[0] not in pids  # the nanny started a new worker process


def test_cancel_stops_the_cluster_and_leaves_no_output(scene, cluster, tmp_path):
    from distributed import Client
    model, raster, _, _ = scene
    out = str(tmp_path / "map.tif")

    def cancel(feedback):
        feedback.cancelled = True

    with pytest.raises(Cancelled):
        classify(ClassifyConfig(input=raster, model=model, output=out, tile_size=16,
                                dask=cluster.scheduler_address), Hook(cancel))
    assert os.listdir(tmp_path) == []
    deadline = time.time() + 30
    left = None
    with Client(cluster.scheduler_address) as client:
        while time.time() < deadline:
            left = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            if left == 0:
                break
            time.sleep(0.2)
    assert left == 0  # nothing of the job is queued or running on the cluster any more


@pytest.mark.parametrize("address, words", [("local:x", "local:N"), ("local:0", "local:N"),
                                            ("myhost:8786", "tcp://host:8786")])
def test_bad_addresses_are_named(scene, tmp_path, address, words):
    model, raster, _, _ = scene
    with pytest.raises(InputError) as error:
        classify(ClassifyConfig(input=raster, model=model, output=str(tmp_path / "m.tif"), dask=address))
    assert str(error.value).startswith("DASK:") and words in str(error.value)
    assert os.listdir(tmp_path) == []


def test_without_dask_the_message_says_how_to_install_it(scene, tmp_path, monkeypatch):
    import sys
    model, raster, _, _ = scene
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError) as error:
        classify(ClassifyConfig(input=raster, model=model, output=str(tmp_path / "m.tif"), dask="local:2"))
    assert str(error.value).startswith("DASK:") and "pip install 'dask[distributed]'" in str(error.value)


@pytest.mark.qgis
def test_qgis_parameter_dask(processing_run, scene, tmp_path, monkeypatch):
    """DASK is an advanced parameter of hsigan:classify; without dask QGIS says how to install it."""
    import sys
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition
    from errors_helpers import qgis_error
    algorithm = QgsApplication.processingRegistry().algorithmById("hsigan:classify")
    parameter = algorithm.parameterDefinition("DASK")
    assert parameter is not None and parameter.flags() & QgsProcessingParameterDefinition.FlagAdvanced
    model, raster, _, _ = scene
    monkeypatch.setitem(sys.modules, "distributed", None)
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "DASK": "local:2",
                                                             "OUTPUT": str(tmp_path / "m.tif")})
    assert message.startswith("Dask cluster (DASK):") and "pip install" in message, message
    assert os.listdir(tmp_path) == []


@pytest.mark.qgis
def test_qgis_process_with_a_local_cluster(scene, tmp_path):
    """qgis_process (Python embedded in QGIS) starts local:2 worker processes with a real Python and gives
    the single-machine map."""
    from conftest import run_qgis_process
    model, raster, reference, _ = scene
    out = str(tmp_path / "map.tif")
    done = run_qgis_process("run", "hsigan:classify", "--", f"INPUT={raster}", f"MODEL={model}", f"OUTPUT={out}",
                            "DASK=local:2", "TILE_SIZE=32", "DEVICE=1")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "Dask workers" in done.stdout + done.stderr
    assert (read(out, 1) == reference).all()
