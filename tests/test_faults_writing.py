"""Issue 10, the data-loss half: faults while writing (a full disk, outputs that are inputs through twins,
sidecars, VRTs and links, multi-file formats, hostile model members, signals, long names). Each hostile
case runs through the CLI (bin/hsigan) or qgis_process (bin/qgis-process) and asserts the message, the
exit code, that no output or temp file is left, and that every input is byte-identical afterwards
(fault_checks.Unchanged)."""
import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from conftest import ROOT, write_raster
from fault_checks import HSIGAN, Unchanged, _hash, cli, one_error_line, qgis, temp_files
from errors_helpers import WAVELENGTHS, scene, stripe_features, tag_wavelengths, write_labels

hostile = pytest.mark.hostile
TRAIN = ["--class-field", "cls", "--epochs", "2", "--gan", "none", "--patch-size", "3", "--validation-fraction",
         "0", "--batch-size", "32", "--device", "cpu", "--quiet"]
AUGMENT = ["--class-field", "cls", "--patch-size", "3", "--gan-steps", "2", "--count-per-class", "5",
           "--device", "cpu", "--quiet"]


@pytest.fixture
def data(tmp_path):
    """A folder with the synthetic scene (wavelengths tagged) and its stripe labels."""
    raster = tag_wavelengths(scene(tmp_path / "scene.tif"), WAVELENGTHS)
    labels = write_labels(tmp_path / "labels.gpkg", stripe_features())
    return tmp_path, raster, labels


def classify_args(raster, model, output, *extra):
    return ["classify", "--input", raster, "--model", model, "--output", output, "--device", "cpu", "--quiet",
            *map(str, extra)]


def class_map(path):
    path = str(path)
    write_raster(path, np.ones((1, 24, 24), dtype="uint8"), crs="EPSG:32633", transform=_transform())
    return path


def _transform():
    from errors_helpers import transform
    return transform()


def refused(code, text, job, parameter, *words):
    """A CLI refusal: exit 2, one error line naming `parameter` and containing `words`."""
    assert code == 2, text
    line = one_error_line(text, job)
    assert f"error: {parameter}:" in line, line
    for word in words:
        assert word in line, line
    return line


def qgis_refused(code, text, parameter, *words):
    assert code != 0, text
    assert "Traceback" not in text, text
    assert f"{parameter}:" in text, text
    for word in words:
        assert word in text, text
    return text


# -- 1. a full disk --------------------------------------------------------------------------------------
@pytest.fixture
def disk(tmp_path):
    """A 2 MB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder):
    """Fills the disk under folder to the last byte."""
    with open(os.path.join(str(folder), "filler"), "wb", buffering=0) as stream:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    stream.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    assert shutil.disk_usage(str(folder)).free < 4096


def old_files(folder):
    return {name: _hash(os.path.join(str(folder), name)) for name in os.listdir(str(folder))}


@hostile
@pytest.mark.parametrize("extra", [[], ["--output-probabilities", "prob.tif"], ["--output-confidence", "conf.tif"]],
                         ids=["map", "probabilities", "confidence"])
def test_disk_full_classify_cli(small_model, disk, extra):
    model, raster = small_model
    extra = [str(disk / e) if e.endswith(".tif") else e for e in extra]
    args = classify_args(raster, model, disk / "map.tif", *extra)
    code, text = cli(*args)
    assert code == 0, text
    before = old_files(disk)
    fill(disk)
    guard = Unchanged([raster, model], [disk])
    code, text = cli(*args)
    refused(code, text, "classify", "OUTPUT", "disk full", "previous file")
    guard.check()
    assert {k: v for k, v in old_files(disk).items() if k != "filler"} == before  # old map (and twins) kept


@pytest.mark.qgis
@hostile
@pytest.mark.parametrize("probabilities", [False, True], ids=["map", "probabilities"])
def test_disk_full_classify_qgis_process(small_model, disk, probabilities):
    model, raster = small_model
    parameters = {"INPUT": raster, "MODEL": model, "OUTPUT": str(disk / "map.tif"), "DEVICE": 1}
    if probabilities:
        parameters["OUTPUT_PROBABILITIES"] = str(disk / "prob.tif")
    code, text = qgis("hsigan:classify", parameters)
    assert code == 0, text
    before = old_files(disk)
    fill(disk)
    guard = Unchanged([raster, model], [disk], sidecars=False)  # QGIS writes statistics beside what it opens
    code, text = qgis("hsigan:classify", parameters)
    qgis_refused(code, text, "OUTPUT", "disk full")
    guard.check()
    assert {k: v for k, v in old_files(disk).items() if k != "filler"} == before


@hostile
@pytest.mark.parametrize("job", ["train", "augment", "assess"])
def test_disk_full_other_writers_cli(data, disk, job):
    folder, raster, labels = data
    if job == "train":
        args, parameter = ["train", "--input", raster, "--labels", labels, "--output-model", disk / "m.hsigan",
                           *TRAIN], "OUTPUT_MODEL"
    elif job == "augment":
        args, parameter = ["augment", "--input", raster, "--labels", labels, "--output", disk / "s.hsamples",
                           *AUGMENT], "OUTPUT"
    else:  # a map of class 1 and reference codes 1-3
        raster = class_map(folder / "map.tif")
        labels = write_labels(folder / "reference.gpkg", stripe_features(names=[1, 2, 3]))
        args, parameter = ["assess", "--input", raster, "--reference", labels, "--class-field", "cls",
                           "--output-report", disk / "report.html", "--quiet"], "OUTPUT_REPORT"
    code, text = cli(*args)
    assert code == 0, text
    before = old_files(disk)
    fill(disk)
    guard = Unchanged([raster, labels], [disk, folder])
    code, text = cli(*args, *(["--seed", "3"] if job != "assess" else []))
    refused(code, text, job, parameter, "disk full")
    guard.check()
    assert {k: v for k, v in old_files(disk).items() if k != "filler"} == before


# -- 2. every written file against every input ------------------------------------------------------------
def geojson_as(path, features=None):
    """Labels written as GeoJSON under any name (GDAL recognises the content)."""
    source = write_labels(str(path) + ".geojson", features or stripe_features())
    os.replace(source, str(path))
    return str(path)


@hostile
@pytest.mark.parametrize("job", ["train", "augment", "assess"])
def test_report_twin_is_an_input_cli(data, job):
    """--output-report X.html writes X.json: with labels or reference X.json it is refused up front."""
    folder, raster, _ = data
    labels = geojson_as(folder / "r.json")
    report = str(folder / "r.html")
    if job == "train":
        args = ["train", "--input", raster, "--labels", labels, "--output-model", folder / "m.hsigan",
                "--output-report", report, *TRAIN]
    elif job == "augment":
        args = ["augment", "--input", raster, "--labels", labels, "--output", folder / "s.hsamples",
                "--output-report", report, *AUGMENT]
    else:
        raster = class_map(folder / "map.tif")
        args = ["assess", "--input", raster, "--reference", labels, "--class-field", "cls", "--output-report", report]
    guard = Unchanged([raster, labels], [folder])
    code, text = cli(*args)
    refused(code, text, job, "OUTPUT_REPORT", "r.json", "is also an input")
    guard.check()


@pytest.mark.qgis
@hostile
@pytest.mark.parametrize("job", ["train", "augment", "assess"])
def test_report_twin_is_an_input_qgis_process(data, job):
    """QGIS hands the engine a GeoPackage copy of GeoJSON labels: the algorithm checks the original."""
    folder, raster, _ = data
    labels = geojson_as(folder / "r.json")
    report = str(folder / "r.html")
    if job == "train":
        from errors_helpers import train_params
        parameters = train_params(raster, labels, str(folder / "m.hsigan"), OUTPUT_REPORT=report)
    elif job == "augment":
        parameters = {"INPUT": raster, "LABELS": labels, "CLASS_FIELD": "cls", "OUTPUT": str(folder / "s.hsamples"),
                      "OUTPUT_REPORT": report, "GAN_STEPS": 2, "COUNT_PER_CLASS": 5, "PATCH_SIZE": 3}
    else:
        raster = class_map(folder / "map.tif")
        parameters = {"INPUT": raster, "REFERENCE": labels, "CLASS_FIELD": "cls", "OUTPUT_REPORT": report}
    guard = Unchanged([raster, labels], [folder], sidecars=False)
    code, text = qgis(f"hsigan:{job}", parameters)
    qgis_refused(code, text, "OUTPUT_REPORT", "is also an input")
    guard.check(allowed=["map.tif.aux.xml", "scene.tif.aux.xml"])  # QGIS's layer statistics


@hostile
def test_map_style_sidecar_is_the_model_cli(small_model, tmp_path):
    """The .qml written beside map.tif would replace a model file named map.qml."""
    model = shutil.copy(small_model[0], tmp_path / "map.qml")
    raster = shutil.copy(small_model[1], tmp_path / "scene.tif")
    guard = Unchanged([raster, model], [tmp_path])
    code, text = cli(*classify_args(raster, model, tmp_path / "map.tif"))
    refused(code, text, "classify", "OUTPUT", "map.qml", "is also an input")
    guard.check()


@hostile
def test_shapefile_part_is_an_input_cli(data):
    """A report named like a part of the labels shapefile (labels.dbf) is refused: GDAL's file list of
    the labels dataset is checked, not only the path given."""
    folder, raster, _ = data
    labels = write_labels(folder / "labels.shp", stripe_features())
    guard = Unchanged([raster, labels, folder / "labels.dbf", folder / "labels.shx"], [folder])
    code, text = cli("train", "--input", raster, "--labels", labels, "--output-model", folder / "m.hsigan",
                     "--output-report", folder / "labels.dbf", *TRAIN)
    refused(code, text, "train", "OUTPUT_REPORT", "labels.dbf", "is also an input")
    guard.check()


@hostile
@pytest.mark.parametrize("case", ["style-twice", "samples-twin", "model-twin", "report-json"])
def test_one_file_written_twice_cli(small_model, data, case):
    folder, raster, labels = data
    model = small_model[0]
    if case == "style-twice":  # map.tif and map.img both want map.qml
        args = classify_args(raster, model, folder / "map.tif", "--output-confidence", folder / "map.img")
        job, parameter, words = "classify", "OUTPUT_CONFIDENCE", ["map.qml", "written twice"]
    elif case == "samples-twin":  # the report's twin r.json is the sample file
        args = ["augment", "--input", raster, "--labels", labels, "--output", folder / "r.json", "--output-report",
                folder / "r.html", *AUGMENT]
        job, parameter, words = "augment", "OUTPUT_REPORT", ["r.json", "written twice"]
    elif case == "model-twin":
        args = ["train", "--input", raster, "--labels", labels, "--output-model", folder / "r.json",
                "--output-report", folder / "r.html", *TRAIN]
        job, parameter, words = "train", "OUTPUT_REPORT", ["r.json", "written twice"]
    else:  # an HTML report named .json would be overwritten by its own twin
        args = ["train", "--input", raster, "--labels", labels, "--output-model", folder / "m.hsigan",
                "--output-report", folder / "r.json", *TRAIN]
        job, parameter, words = "train", "OUTPUT_REPORT", [".html"]
    guard = Unchanged([raster, labels, model], [folder])
    code, text = cli(*args)
    refused(code, text, job, parameter, *words)
    guard.check()


# -- 3. through VRTs, symbolic and hard links ---------------------------------------------------------------
def vrt_over(folder, source):
    vrt = str(folder / "good.vrt")
    if shutil.which("gdalbuildvrt"):
        subprocess.run(["gdalbuildvrt", "-q", vrt, source], check=True)
    else:
        from osgeo import gdal
        gdal.BuildVRT(vrt, [source]).FlushCache()
    return vrt


@pytest.fixture
def vsrc(small_model, tmp_path):
    source = shutil.copy(small_model[1], tmp_path / "vsrc.tif")
    return small_model[0], source, vrt_over(tmp_path, source)


@hostile
@pytest.mark.parametrize("parameter", ["OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PROBABILITIES"])
def test_output_is_the_source_of_an_input_vrt_cli(vsrc, tmp_path, parameter):
    model, source, vrt = vsrc
    guard = Unchanged([source, vrt, model], [tmp_path])
    outputs = {"OUTPUT": tmp_path / "map.tif"}
    outputs[parameter] = source
    extra = [x for p in ("OUTPUT_CONFIDENCE", "OUTPUT_PROBABILITIES") if p in outputs
             for x in ("--" + p.lower().replace("_", "-"), outputs[p])]
    code, text = cli(*classify_args(vrt, model, outputs["OUTPUT"], *extra))
    refused(code, text, "classify", parameter, "vsrc.tif", "is also an input")
    guard.check()


@pytest.mark.qgis
@hostile
def test_output_is_the_source_of_an_input_vrt_qgis_process(vsrc, tmp_path):
    model, source, vrt = vsrc
    # QGIS itself stores the statistics it computes for a VRT layer inside the .vrt (as it writes an
    # .aux.xml beside a GeoTIFF), so the .vrt is left out here; its source is what must survive
    guard = Unchanged([source, model], [tmp_path], sidecars=False)
    code, text = qgis("hsigan:classify", {"INPUT": vrt, "MODEL": model, "OUTPUT": source, "DEVICE": 1})
    qgis_refused(code, text, "OUTPUT", "is also an input")
    guard.check(allowed=["good.vrt.aux.xml", "vsrc.tif.aux.xml"])


@hostile
@pytest.mark.parametrize("link", ["symlink", "hardlink", "symlink-to-folder"])
def test_output_is_a_link_to_an_input_cli(small_model, tmp_path, link):
    model = shutil.copy(small_model[0], tmp_path / "m.hsigan")
    raster = shutil.copy(small_model[1], tmp_path / "scene.tif")
    if link == "symlink":
        out = tmp_path / "map.tif"
        os.symlink(raster, out)
    elif link == "hardlink":
        out = tmp_path / "map.tif"
        os.link(raster, out)
    else:  # the same file through a linked folder
        os.symlink(tmp_path, tmp_path / "alias")
        out = tmp_path / "alias" / "scene.tif"
    guard = Unchanged([raster, model], [tmp_path])
    code, text = cli(*classify_args(raster, model, out))
    refused(code, text, "classify", "OUTPUT", "is also an input")
    guard.check()


@hostile
def test_multi_file_output_would_replace_an_input_cli(small_model, tmp_path):
    """ER Mapper writes cube.ers and its data file cube: with an ENVI input raster named cube, the data
    file would replace the input; refused before anything replaces it."""
    import rasterio
    model = small_model[0]
    with rasterio.open(small_model[1]) as src:
        data, tags = src.read(), [src.tags(b) for b in range(1, src.count + 1)]
    raster = write_raster(tmp_path / "cube", data, crs="EPSG:32633", transform=_transform(), driver="ENVI")
    with rasterio.open(raster, "r+") as dst:
        for band, band_tags in enumerate(tags, start=1):
            dst.update_tags(band, **band_tags)
    guard = Unchanged([raster, str(tmp_path / "cube.hdr"), model], [tmp_path])
    code, text = cli(*classify_args(raster, model, tmp_path / "cube.ers"))
    refused(code, text, "classify", "OUTPUT", "is also an input")
    guard.check()


# -- 4. output formats --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["img", "ers", "mrf", "pix"])
def test_multi_and_single_file_formats_read_back(small_model, tmp_path, ext):
    """Every format HSI-GAN writes holds the GeoTIFF's classes and probabilities, under final names only
    (headers name the final files; nothing hidden is left)."""
    import rasterio
    from hsigan_qgis.config import ClassifyConfig
    from hsigan_qgis.classify import classify
    model, raster = small_model
    classify(ClassifyConfig(input=raster, model=model, output=str(tmp_path / "ref.tif"),
                            output_probabilities=str(tmp_path / "refp.tif"), device="cpu"))
    classify(ClassifyConfig(input=raster, model=model, output=str(tmp_path / f"map.{ext}"),
                            output_probabilities=str(tmp_path / f"p.{ext}"), device="cpu"))
    for name, reference in ((f"map.{ext}", "ref.tif"), (f"p.{ext}", "refp.tif")):
        with rasterio.open(tmp_path / name) as got, rasterio.open(tmp_path / reference) as want:
            assert np.array_equal(got.read(), want.read())
            assert all(os.path.isfile(f) and ".part" not in f and ".hsigan-" not in f for f in got.files)
    assert not temp_files(tmp_path)
    assert os.path.isfile(tmp_path / "map.qml")


@hostile
@pytest.mark.parametrize("ext", ["vrt", "nc", "png", "xyz"])
def test_unsupported_output_format_cli(small_model, tmp_path, ext):
    model, raster = small_model
    guard = Unchanged([raster, model], [tmp_path])
    code, text = cli(*classify_args(raster, model, tmp_path / f"map.{ext}"))
    refused(code, text, "classify", "OUTPUT", f"'.{ext}'", ".tif (GeoTIFF)", ".ers")
    guard.check()


@pytest.mark.qgis
@hostile
def test_unsupported_output_format_qgis_process(small_model, tmp_path):
    model, raster = small_model
    guard = Unchanged([raster, model], [tmp_path], sidecars=False)
    code, text = qgis("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": str(tmp_path / "map.vrt"),
                                          "DEVICE": 1})
    qgis_refused(code, text, "OUTPUT", ".tif (GeoTIFF)")
    guard.check()


@hostile
def test_cog_needs_a_tif_cli(small_model, tmp_path):
    model, raster = small_model
    guard = Unchanged([raster, model], [tmp_path])
    code, text = cli(*classify_args(raster, model, tmp_path / "map.img", "--cog"))
    refused(code, text, "classify", "COG", ".tif")
    guard.check()


# -- 5. hostile model members -------------------------------------------------------------------------------
def _npy_header(shape, descr="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def crafted_model(model, path, drop=(), extra=None, big=None):
    """A copy of `model` less `drop`, plus `extra` {name: bytes}, plus `big` (name, shape): a float32 zero
    tensor of that shape streamed into a deflated member (gigabytes declared, a few MB on disk)."""
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in source.infolist():
            if info.filename not in drop:
                out.writestr(info.filename, source.read(info))
        for name, content in (extra or {}).items():
            out.writestr(name, content)
        if big:
            name, shape = big
            with out.open(name, "w", force_zip64=True) as stream:
                stream.write(_npy_header(shape))
                chunk, left = bytes(1 << 22), int(np.prod(shape)) * 4
                while left:
                    stream.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
    return str(path)


@pytest.fixture(scope="module")
def gigabyte_model(small_model, tmp_path_factory):
    """The small model plus a 1 GiB zero tensor under a name its architecture does not have."""
    folder = tmp_path_factory.mktemp("gigabyte")
    return crafted_model(small_model[0], folder / "big.hsigan", big=("tensors/classifier/unused.npy", (1 << 28,)))


def run_measured(args):
    """(exit code, output, seconds, peak RSS in MB) of the CLI with args, in a fresh process whose peak is
    its own (VmHWM: the parent's memory at fork, which ru_maxrss would count, is left out)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from train_memory import WRAPPER
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    output = done.stdout + "\n".join(line for line in done.stderr.splitlines() if not line.startswith("PEAK_RSS_KB"))
    return done.returncode, output, time.perf_counter() - started, int(peak[-1].split()[1]) / 1024


@hostile
def test_gigabyte_member_is_refused_fast_and_small_cli(small_model, gigabyte_model, tmp_path):
    _, raster = small_model
    assert os.path.getsize(gigabyte_model) < 20e6 and zipfile.ZipFile(gigabyte_model).getinfo(
        "tensors/classifier/unused.npy").file_size > 1 << 30
    guard = Unchanged([raster, gigabyte_model], [tmp_path])
    code, text, seconds, peak = run_measured(classify_args(raster, gigabyte_model, tmp_path / "map.tif"))
    refused(code, text, "classify", "MODEL", "no use for", "unused")
    assert seconds < 60 and peak < 700, (seconds, peak)  # the 1 GiB tensor alone would be 1024 MB (start-up: torch)
    guard.check()


@pytest.mark.qgis
@hostile
def test_gigabyte_member_is_refused_qgis_process(small_model, gigabyte_model, tmp_path):
    _, raster = small_model
    guard = Unchanged([raster, gigabyte_model], [tmp_path], sidecars=False)
    code, text = qgis("hsigan:classify", {"INPUT": raster, "MODEL": gigabyte_model,
                                          "OUTPUT": str(tmp_path / "map.tif"), "DEVICE": 1})
    qgis_refused(code, text, "MODEL", "no use for")
    guard.check()


def _members(model):
    return sorted(n for n in zipfile.ZipFile(model).namelist() if n.startswith("tensors/classifier/"))


@hostile
@pytest.mark.parametrize("case", ["declared-huge", "size-lies", "not-npy", "missing", "wide-layer"])
def test_model_member_checks_cli(small_model, tmp_path, case):
    model, raster = small_model
    head = "tensors/classifier/head.weight.npy"
    weight = "tensors/classifier/spatial.0.weight.npy"
    shape = np.load(io.BytesIO(zipfile.ZipFile(model).read(weight))).shape
    if case == "declared-huge":  # a used name whose header claims 4 GiB
        path = crafted_model(model, tmp_path / "x.hsigan", drop=(weight,), extra={weight: _npy_header((1 << 30,))})
        words = ["declared (1073741824,)", "spatial.0.weight"]
    elif case == "size-lies":  # the right shape, half of its data
        data = np.zeros(shape, np.float32).tobytes()
        path = crafted_model(model, tmp_path / "x.hsigan", drop=(weight,),
                             extra={weight: _npy_header(shape) + data[:len(data) // 2]})
        words = ["declared size"]
    elif case == "not-npy":
        path = crafted_model(model, tmp_path / "x.hsigan", extra={"notes.txt": b"hello"})
        words = ["odd entry 'notes.txt'"]
    elif case == "missing":
        path = crafted_model(model, tmp_path / "x.hsigan", drop=(weight,))
        words = ["missing", "spatial.0.weight"]
    else:  # a head 100000 wide: the widths come from the declared shapes and are capped
        classes = np.load(io.BytesIO(zipfile.ZipFile(model).read(head))).shape[0]
        path = crafted_model(model, tmp_path / "x.hsigan", drop=(head,),
                             extra={head: _npy_header((classes, 100000, 1, 1))})
        words = ["implausible"]
    assert len(_members(path)) >= len(_members(model)) - 1
    guard = Unchanged([raster, path], [tmp_path])
    code, text = cli(*classify_args(raster, path, tmp_path / "map.tif"))
    refused(code, text, "classify", "MODEL", *words)
    guard.check()


# -- 7. signals ---------------------------------------------------------------------------------------------
SLOW = {  # a sitecustomize that signals the run has reached its writing and then waits there
    "classify": ("import os, time\nimport hsigan_qgis.predict as i\n_d = i.dense_logits\n"
                 "def dense_logits(model, x):\n"
                 "    open(os.environ['HSIGAN_TEST_STARTED'], 'w').close()\n"
                 "    time.sleep(float(os.environ.get('HSIGAN_TEST_SLEEP', '60')))\n"
                 "    return _d(model, x)\n"
                 "i.dense_logits = dense_logits\n"),
    "train": ("import os, time, zipfile\n_w = zipfile.ZipFile.writestr\n"
              "def writestr(self, *args, **kwargs):\n"
              "    _w(self, *args, **kwargs)\n"
              "    open(os.environ['HSIGAN_TEST_STARTED'], 'w').close()\n"
              "    time.sleep(float(os.environ.get('HSIGAN_TEST_SLEEP', '60')))\n"
              "zipfile.ZipFile.writestr = writestr\n"),
}


def start_slow(job, folder, args, sleep=60):
    hook = folder / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {ROOT!r})\n" + SLOW[job])
    started = folder / "started"
    env = dict(os.environ, PYTHONPATH=str(hook), HSIGAN_TEST_STARTED=str(started), HSIGAN_TEST_SLEEP=str(sleep))
    process = subprocess.Popen([HSIGAN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    deadline = time.time() + 120
    while not started.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[0]
    return process


def job_args(job, folder, raster, labels, model, out):
    if job == "classify":
        return classify_args(raster, model, out, "--tile-size", "16")
    return ["train", "--input", raster, "--labels", labels, "--output-model", out, *TRAIN]


@hostile
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("job", ["classify", "train"])
def test_signal_cleans_up_cli(small_model, data, job, signum):
    folder, raster, labels = data
    model = small_model[0]
    out = folder / ("map.tif" if job == "classify" else "m.hsigan")
    out.write_bytes(b"the previous output, which must survive")
    guard = Unchanged([raster, labels, model, out], [folder], sidecars=False)
    process = start_slow(job, folder, job_args(job, folder, raster, labels, model, out))
    assert temp_files(folder), "the run should be writing into its temporary folder now"
    process.send_signal(signum)
    text, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, text
    line = one_error_line(text, job)
    assert f"stopped by {signal.Signals(signum).name}" in line and "no output was written" in line, line
    guard.check(allowed=["hook", "started"])


@hostile
@pytest.mark.parametrize("job", ["classify", "train"])
def test_after_sigkill_the_next_run_removes_its_stale_temp_files(small_model, data, tmp_path_factory, job):
    folder, raster, labels = data
    model = small_model[0]
    out = folder / ("map.tif" if job == "classify" else "m.hsigan")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    others = [elsewhere / ".hsigan-1-abcdefgh.part", folder / ".mine.part", folder / ".hsigan-notes.part"]
    for other in others:  # not ours (another folder, another naming scheme): kept
        other.mkdir()
    guard = Unchanged([raster, labels, model], [], sidecars=False)
    process = start_slow(job, folder, job_args(job, folder, raster, labels, model, out))
    process.kill()
    process.communicate(timeout=60)
    stale = [p for p in temp_files(folder) if os.path.basename(p).startswith(".hsigan-") and
             os.path.basename(p) != ".hsigan-notes.part"]
    assert stale and not out.exists()  # SIGKILL cannot be caught: its temporary folder is left
    time.sleep(1.1)  # older than the next run
    code, text = cli(*job_args(job, folder, raster, labels, model, out))
    assert code == 0, text
    assert not any(os.path.exists(p) for p in stale)
    assert all(other.is_dir() for other in others)
    guard.check()


def test_a_live_runs_temp_folder_is_kept(tmp_path):
    """Another process's temporary folder that is still in use (locked) is not stale, however old; once that
    process is killed, it is."""
    from hsigan_qgis.outputs import remove_stale
    code = (f"import sys, time\nsys.path.insert(0, {ROOT!r})\nfrom hsigan_qgis.outputs import atomic_path\n"
            f"with atomic_path({str(tmp_path / 'a.txt')!r}) as temporary:\n"
            "    open(temporary, 'w').close()\n    print(temporary, flush=True)\n    time.sleep(120)\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        folder = os.path.dirname(writer.stdout.readline().strip())
        os.utime(folder, (0, 0))  # as old as can be
        assert remove_stale(str(tmp_path), time.time() + 10) == []
        assert os.path.isdir(folder)
    finally:
        writer.kill()
        writer.wait()
    assert remove_stale(str(tmp_path), time.time() + 10) == [os.path.basename(folder)]
    assert os.listdir(tmp_path) == []


# -- 9. long names ------------------------------------------------------------------------------------------
def long_name(folder, ext, length=245):
    return str(folder / ("n" * (length - len(ext)) + ext))


def test_245_character_names_work(small_model, data):
    """Temporary names are the final names inside a short temporary folder: a 245-character name fits
    for the map (with its .aux.xml and .qml), the model, the sample file and the report with its twin."""
    folder, raster, labels = data
    model = small_model[0]
    out = long_name(folder, ".tif")
    code, text = cli(*classify_args(raster, model, out))
    assert code == 0 and os.path.isfile(out) and os.path.isfile(out + ".aux.xml"), text
    model_out, report = long_name(folder, ".hsigan"), long_name(folder, ".html")
    code, text = cli("train", "--input", raster, "--labels", labels, "--output-model", model_out,
                     "--output-report", report, *TRAIN)
    assert code == 0 and os.path.isfile(model_out) and os.path.isfile(report[:-5] + ".json"), text
    samples = long_name(folder, ".hsamples")
    code, text = cli("augment", "--input", raster, "--labels", labels, "--output", samples, *AUGMENT)
    assert code == 0 and os.path.isfile(samples), text
    assert not temp_files(folder)


@hostile
def test_name_whose_sidecar_cannot_fit_cli(small_model, tmp_path):
    model, raster = small_model
    guard = Unchanged([raster, model], [tmp_path])
    code, text = cli(*classify_args(raster, model, long_name(tmp_path, ".tif", 252)))
    refused(code, text, "classify", "OUTPUT", "longer than its folder allows", "at most 247")
    guard.check()
