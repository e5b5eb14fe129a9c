"""GPU benchmark and check (the CUDA half of issue 4), for a machine with an NVIDIA GPU and torch's CUDA
build. Needs torch, numpy, scipy and rasterio only (no QGIS, no GDAL Python bindings).

    python bench/cuda.py --inputs DIR [--size 2048] [--out bench/RESULTS-cuda]

DIR holds salinas.hsigan (a model trained on the Salinas-A sample) and salinas.hsamples (a sample file of
it), made on any machine by `python bench/cuda.py --make-inputs DIR` (that step needs the full install).

What it does, in this order, writing OUT.json after every section (so a run cut short keeps what it did):
  1. classify() the Salinas-A sample with the trained model on CPU and on CUDA: same labels? largest
     difference of the class probabilities? TILE_SIZE 16 x BATCH_SIZE 8 on CUDA gives the 256 map? two
     CUDA runs, the same map?
  2. Same seed, same device, same model: train() twice on CUDA from the sample file (GAN none), the
     WGAN-GP generator (gan.train_wgan) and the semi-supervised GAN (gan.train_ssgan) twice each; each
     run in a fresh process; SHA-256 of the weights compared.
  3. Dense classifier throughput (200 bands, 16 classes, patch 7, default widths, random weights): pixels
     per second of one forward pass over tiles of 256 and 512 px, batches of 1-16 tiles, float32 and
     float16, on CUDA and on this machine's CPU (medians of repeats, CUDA synchronised).
  4. Whole classify() of a synthetic SIZE^2 x 200-band int16 GeoTIFF (tiled, DEFLATE) on CUDA and on CPU
     with one and with the automatic number of reading threads, and tile sizes 256-1024: wall seconds,
     reading seconds, label agreement.
  5. (issue 15; `--sections layouts`) classify() at the defaults against a read-only pass of the same
     file, for tiled DEFLATE and uncompressed GeoTIFF and ENVI BSQ: seconds and their ratio.
  6. (`--sections normalise`) chunks judged and normalised on the GPU (device_normalise) against the
     CPU's read_window + Normalisation.apply, for float32 with NaN, int16 with a nodata value and
     scale/offset, uint16 above 32767: bit-equal bands and validity? the same classify() map?
  7. (`--sections smoothing`) a model with SMOOTHING 5x5 (salinas_smoothed.hsigan in DIR): the CPU's and the
     GPU's maps and probabilities, with and without TTA; tiles of 16 px in batches of 8 against the automatic.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
SAMPLE = os.path.join(ROOT, "sample_data", "salinas_a.tif")
GPU = "cuda"  # --gpu cpu: a dry run of every section on a machine without a GPU


def bench_inference():
    """bench/inference.py as a module (its synthetic raster, random model and helpers)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_inference", os.path.join(ROOT, "bench", "inference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_inputs(folder):
    """The trained Salinas-A model and sample file that the GPU machine cannot make (no GDAL vectors)."""
    from hsigan_qgis.augment import augment
    from hsigan_qgis.config import AugmentConfig, TrainConfig
    from hsigan_qgis.train import train

    os.makedirs(folder, exist_ok=True)
    labels = os.path.join(ROOT, "sample_data", "salinas_a_train.gpkg")
    train(TrainConfig(input=SAMPLE, labels=labels, class_field="class_name", gan="none", epochs=30, seed=0,
                      output_model=os.path.join(folder, "salinas.hsigan"), device="cpu"))
    train(TrainConfig(input=SAMPLE, labels=labels, class_field="class_name", gan="none", epochs=30, seed=0,
                      smoothing="5x5", output_model=os.path.join(folder, "salinas_smoothed.hsigan"), device="cpu"))
    augment(AugmentConfig(input=SAMPLE, labels=labels, class_field="class_name", samples_per_class=30,
                          count_per_class=30, gan_steps=20, seed=0, device="cpu",
                          output=os.path.join(folder, "salinas.hsamples")))


def classify_to(path, model, out, device, tuning=None, **kw):
    """classify(); tuning: its keyword arguments for benchmarks (read_threads, decode_threads)."""
    from hsigan_qgis.config import ClassifyConfig
    from hsigan_qgis.classify import classify
    return classify(ClassifyConfig(input=path, model=model, output=out, device=device, **kw), **(tuning or {}))


def read(path, band=None):
    import rasterio
    with rasterio.open(path) as src:
        return src.read(band) if band else src.read()


def cpu_against_cuda(cpu, cuda):
    """The figures comparing two (labels, probabilities) maps of the same model: CPU's and CUDA's."""
    return dict(labels_cpu_equal_cuda=bool((cpu[0] == cuda[0]).all()),
                label_agreement_cpu_cuda=float((cpu[0] == cuda[0]).mean()),
                max_probability_difference_cpu_cuda=float(np.abs(cpu[1] - cuda[1]).max()))


def small_tiles_against(tiles, small, name):
    """The figures comparing CUDA's map with tiles of 16 px in batches of 8 (small) to its map with tiles named
    name (both (labels, probabilities))."""
    return {f"cuda_tile16_batch8_equals_{name}": bool((tiles[0] == small[0]).all()),
            f"max_probability_difference_tile16_vs_{name}": float(np.abs(tiles[1] - small[1]).max())}


def check_classify(inputs, work):
    model = os.path.join(inputs, "salinas.hsigan")
    runs, used = {}, None
    for name, device, kw in (("cpu", "cpu", {}), ("cuda", GPU, {}), ("cuda_again", GPU, {}),
                             ("cuda_tile16_batch8", GPU, dict(tile_size=16, batch_size=8))):
        out = os.path.join(work, f"salinas_{name}.tif")
        result = classify_to(SAMPLE, model, out, device, output_probabilities=os.path.join(work, f"p_{name}.tif"),
                             **kw)
        runs[name] = (read(out, 1), read(os.path.join(work, f"p_{name}.tif")))
        used = result.device if name == "cuda" else used
    cuda, again = runs["cuda"], runs["cuda_again"]
    return dict(pixels=int(runs["cpu"][0].size), device_used=used, **cpu_against_cuda(runs["cpu"], cuda),
                cuda_runs_identical=bool((cuda[0] == again[0]).all() and (cuda[1] == again[1]).all()),
                **small_tiles_against(cuda, runs["cuda_tile16_batch8"], "tile256"))


def check_smoothing(inputs, work):
    """A model with SMOOTHING 5x5 (its probabilities averaged over a box, models/smoothing.py): the CPU's map
    and the GPU's, with and without TTA, and tiles of 16 px in batches of 8 against the automatic tiles."""
    model = os.path.join(inputs, "salinas_smoothed.hsigan")
    out = {}
    for tta in (False, True):
        maps = {}
        for name, device, kw in (("cpu", "cpu", {}), ("cuda", GPU, {}), ("cuda_tile16_batch8", GPU,
                                                                        dict(tile_size=16, batch_size=8))):
            path = os.path.join(work, f"smoothed_{name}_{tta}.tif")
            classify_to(SAMPLE, model, path, device, output_probabilities=path + ".p.tif", tta=tta, **kw)
            maps[name] = (read(path, 1), read(path + ".p.tif"))
        out["tta" if tta else "plain"] = dict(**cpu_against_cuda(maps["cpu"], maps["cuda"]),
                                              **small_tiles_against(maps["cuda"], maps["cuda_tile16_batch8"],
                                                                    "automatic"))
    return out


def weights_digest(states):
    """SHA-256 over {name: tensor or array} (a state dict, or a model file's tensors without its metadata,
    which holds times)."""
    digest = hashlib.sha256()
    for name in sorted(states):
        value = states[name]
        digest.update(name.encode())
        digest.update(np.asarray(value.detach().cpu() if hasattr(value, "detach") else value).tobytes())
    return digest.hexdigest()


def _salinas_block(spec, radius=3):
    """(normalised halo-padded block on the device, labelled PixelSet, n_classes, valid core) of the
    Salinas-A sample, labels from the sample file's real samples."""
    import torch
    from hsigan_qgis.raster import open_raster, read_window
    from hsigan_qgis.sampling import Normalisation, PixelSet
    with zipfile.ZipFile(spec["samples"]) as archive:
        arrays = {k: np.load(archive.open(f"{k}.npy"), allow_pickle=False) for k in ("rows", "cols", "labels")}
    real = arrays["rows"] >= 0
    with open_raster(SAMPLE) as ds:
        data, valid = read_window(ds, 0, 0, ds.height, ds.width, radius)
    norm = Normalisation.fit(data, valid)
    norm.apply(data, valid)
    block = torch.from_numpy(data).to(torch.device(spec["device"]))
    pixels = PixelSet(arrays["rows"][real], arrays["cols"][real], arrays["labels"][real])
    return block, pixels, int(arrays["labels"].max()) + 1, valid[radius:-radius, radius:-radius]


def train_once(spec):
    """One training run in this process (called in a fresh subprocess); prints the weights' digest.
    none: the public train() from the sample file; wgan, ssgan: the engine's GAN trainers on the sample
    raster (train() from a sample file trains no GAN, and the GPU machine cannot read vector labels)."""
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.training import seed_everything
    if spec["mode"] == "none":
        from hsigan_qgis import model_file
        from hsigan_qgis.config import TrainConfig
        from hsigan_qgis.train import train
        out = os.path.join(spec["work"], f"m_{spec['mode']}_{os.getpid()}.hsigan")
        train(TrainConfig(samples=spec["samples"], output_model=out, gan="none", epochs=8, seed=0,
                          device=spec["device"]))
        tensors = model_file.load(out)[1]
        digest = weights_digest({f"{part}/{name}": array for part, arrays in tensors.items()
                                 for name, array in arrays.items()})
    else:
        seed_everything(0)
        block, pixels, n_classes, core = _salinas_block(spec)
        if spec["mode"] == "wgan":
            from hsigan_qgis.gan import train_wgan
            generator, _ = train_wgan(block, pixels, 3, n_classes, 30, 0, Feedback())
            digest = weights_digest(generator.state_dict())
        else:
            from hsigan_qgis.gan import train_ssgan
            from hsigan_qgis.train import build_classifier
            net = build_classifier(block.shape[0], n_classes, 7).to(block.device)
            train_ssgan(net, block, core, pixels, 3, n_classes, 60, 1e-3, 0, Feedback(), balanced=True)
            digest = weights_digest(net.state_dict())
    print(json.dumps(dict(digest=digest)))


def check_training(inputs, work):
    out = {}
    samples = os.path.join(inputs, "salinas.hsamples")
    for mode in ("none", "wgan", "ssgan"):
        digests, seconds = [], []
        for _ in range(2):
            spec = os.path.join(work, f"train_{mode}.json")
            json.dump(dict(mode=mode, samples=samples, work=work, device=GPU), open(spec, "w"))
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--train-once", spec], capture_output=True, text=True)
            seconds.append(time.perf_counter() - started)
            if done.returncode:
                raise RuntimeError(f"{mode}: {done.stderr[-2000:]}")
            digests.append(json.loads(done.stdout.strip().splitlines()[-1])["digest"])
        out[mode] = dict(identical=digests[0] == digests[1], digests=digests,
                         process_seconds=[round(s, 1) for s in seconds])
        print(f"  train {mode} twice on CUDA: identical weights {digests[0] == digests[1]}", flush=True)
    return out


def throughput(devices):
    import torch
    b = bench_inference()
    BANDS, PATCH, make_net = b.BANDS, b.PATCH, b.make_net
    from hsigan_qgis.predict import dense_logits, prepare_model

    rows = []
    r = PATCH // 2
    for device_name in devices:
        device = torch.device(GPU if device_name == "cuda" else device_name)
        net = prepare_model(make_net(), device)
        gpu = device.type == "cuda"
        cases = [(256, 1), (256, 4), (256, 16), (512, 1), (512, 4)] if gpu else [(256, 1)]
        for tile, batch in cases:
            x = torch.randn(batch, BANDS, tile + 2 * r, tile + 2 * r, device=device)
            for amp in ((False, True) if gpu else (False,)):
                repeats = 20 if gpu else 3
                times = []
                for i in range(repeats + 2):
                    if gpu:
                        torch.cuda.synchronize()
                    started = time.perf_counter()
                    with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                        dense_logits(net, x)
                    if gpu:
                        torch.cuda.synchronize()
                    if i >= 2:  # two warm-ups (cuDNN picks its kernels)
                        times.append(time.perf_counter() - started)
                seconds = statistics.median(times)
                rows.append(dict(device=device_name, tile=tile, batch=batch, float16=amp,
                                 threads=None if gpu else torch.get_num_threads(),
                                 seconds=seconds, pixels_per_s=batch * tile * tile / seconds))
                print(f"  {device_name} tile {tile} batch {batch} fp16 {amp}: "
                      f"{rows[-1]['pixels_per_s'] / 1e6:.2f} Mpx/s", flush=True)
    return rows


def whole_raster(size, work):
    """classify() of one synthetic raster on CUDA as before reading threads and with the automatic reading
    threads and GDAL decoding threads at three tile sizes, and on CPU: wall seconds, reading seconds, and
    whether every map is the same."""
    b = bench_inference()
    path, model = os.path.join(work, f"synthetic_{size}.tif"), os.path.join(work, "random.hsigan")
    b.save_model(b.make_net(), model)
    started = time.perf_counter()
    b.write_raster(path, size)
    out = dict(size=size, write_seconds=time.perf_counter() - started, runs=[])
    maps = {}
    # (device, reading threads (0 = automatic), GDAL decoding threads on CUDA, tile, batch); the first is
    # classify as it was before reading threads (one thread, GDAL's default decoding)
    cases = [("cuda", 1, None, 256, 4), ("cuda", 0, "ALL_CPUS", 256, 4), ("cuda", 0, "ALL_CPUS", 512, 4),
             ("cuda", 0, "ALL_CPUS", 1024, 1), ("cpu", 0, None, 256, 4)]
    for device, threads, decode, tile, batch in cases:
        target = os.path.join(work, "map.tif")
        started = time.perf_counter()
        result = classify_to(path, model, target, GPU if device == "cuda" else "cpu", tile_size=tile,
                             batch_size=batch, tuning=dict(read_threads=threads, decode_threads=decode))
        wall = time.perf_counter() - started
        maps.setdefault(device, []).append(read(target, 1))
        out["runs"].append(dict(device=device, read_threads=result.read_threads, gdal_num_threads=decode,
                                tile=tile, batch=batch, wall_seconds=wall,
                                read_seconds_summed=result.read_seconds, mpixels_per_s=size * size / wall / 1e6))
        print(f"  classify {size}^2 on {device}, {result.read_threads} reading threads, GDAL_NUM_THREADS "
              f"{decode}, tile {tile} x {batch}: {wall:.1f} s (reading {result.read_seconds:.1f} s summed)",
              flush=True)
    out["same_map_whatever_the_threads"] = {d: all((m == ms[0]).all() for m in ms) for d, ms in maps.items()}
    out["label_agreement_cuda_cpu"] = float((maps["cuda"][0] == maps["cpu"][0]).mean())
    return out


def layouts(size, work, repeats=2, variant="zlevel6"):
    """Issue 15: classify() at the defaults (TILE_SIZE 0 = automatic) against a read-only pass of the same
    file (bench/inference.py's read_only_pass: all bands, 512^2 windows, one thread per core, each with its
    own handle, cast to float32) for a tiled DEFLATE GeoTIFF, a tiled uncompressed GeoTIFF and ENVI BSQ of
    the synthetic SIZE^2 x 200-band int16 scene, written on this machine. Medians of `repeats`, after one
    warm-up classify() of a small raster (CUDA context, cuDNN)."""
    import torch
    b = bench_inference()
    model = os.path.join(work, "random.hsigan")
    b.save_model(b.make_net(), model)
    warm = os.path.join(work, "warm.tif")
    b.write_raster(warm, 512)
    classify_to(warm, model, os.path.join(work, "warm_map.tif"), GPU)

    def timed_classify(path, out, **kw):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        result = classify_to(path, model, out, GPU, **kw)
        return time.perf_counter() - started, result

    def once(path, out):
        """The defaults, then the variant (its map must be the same): zlevel6, the map compressed at GDAL's
        DEFLATE level 6 (run 11's code) instead of raster_writer.ZLEVEL; switch: Python's thread switch
        interval at 0.5 ms instead of 5 ms (sys.setswitchinterval), so the computing thread waits less for
        the GIL held by the reading threads; open_in_threads: each reading thread opens its own handle (the code
        before run 16) instead of all opened before they start."""
        from hsigan_qgis import block_reader, raster_writer
        seconds, result = timed_classify(path, out)
        row = dict(seconds=seconds, read_seconds_summed=result.read_seconds, read_threads=result.read_threads)
        labels = read(out, 1)
        level, interval = raster_writer.ZLEVEL, sys.getswitchinterval()
        if variant == "zlevel6":
            raster_writer.ZLEVEL = 6
        elif variant == "open_in_threads":
            block_reader.OPEN_HANDLES_FIRST = False
        else:
            sys.setswitchinterval(0.0005)
        try:
            row[variant + "_seconds"], _ = timed_classify(path, out + ".variant.tif")
        finally:
            raster_writer.ZLEVEL = level
            sys.setswitchinterval(interval)
            block_reader.OPEN_HANDLES_FIRST = True
        row[variant + "_same_map"] = bool((read(out + ".variant.tif", 1) == labels).all())
        print(f"    {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})}", flush=True)
        return row

    return b.layouts(size, work, model, once, threads=os.cpu_count(), repeats=repeats)


def stored_kinds(size=300, bands=40):
    """{name: (data, nodata, (scales, offsets) or None)}: the stored types device_normalise takes."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(bands, size, size)).astype(np.float32)
    holes = np.zeros((size, size), dtype=bool)
    holes[10:40, 50:90], holes[:, -3:] = True, True
    floats = base.copy()
    floats[:, holes] = np.nan
    int16 = np.round(base * 3000).astype(np.int16)
    int16[:, holes] = -9999
    uint16 = np.round(base * 3000 + 40000).astype(np.uint16)
    uint16[:, holes] = 65535
    scaling = ([0.001 * (1 + b % 3) for b in range(bands)], [0.1 * (b % 5) for b in range(bands)])
    return {"float32, NaN": (floats, float("nan"), None), "int16, nodata, scale/offset": (int16, -9999, scaling),
            "uint16 above 32767, nodata": (uint16, 65535, None)}


def normalise_check(work):
    """Section 6: read_tiles on the GPU (stored values, normalised there) against the CPU path, bit for bit,
    and classify() with normalise_on_device True and False: the same map."""
    import rasterio
    import torch
    from rasterio.transform import from_origin

    from hsigan_qgis import block_reader
    from hsigan_qgis.device_normalise import DeviceNormalisation
    from hsigan_qgis.sampling import Normalisation
    b = bench_inference()
    out = {}
    for name, (data, nodata, scaling) in stored_kinds(bands=b.BANDS).items():
        path = os.path.join(work, "kind.tif")
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=len(data),
                           dtype=data.dtype, nodata=nodata, crs="EPSG:32610", transform=from_origin(0, 0, 1, 1),
                           tiled=True, blockxsize=128, blockysize=128, photometric="minisblack") as dst:
            dst.write(data)
            if scaling:
                dst.scales, dst.offsets = scaling
        finite = np.where(np.isfinite(data.astype(np.float32)), data.astype(np.float32), np.nan)
        norm = Normalisation(np.nanmean(finite, axis=(1, 2)), np.nanstd(finite, axis=(1, 2)) + 0.5, [3])
        plan = block_reader.Plan(128, 128, 128)
        with rasterio.open(path) as dataset:
            used = DeviceNormalisation.for_raster(dataset, norm, torch.device(GPU)) is not None
        cpu = list(block_reader.read_tiles(path, data.shape[1], data.shape[2], plan, 3, norm, {}, threads=4))
        gpu = list(block_reader.read_tiles(path, data.shape[1], data.shape[2], plan, 3, norm, {}, threads=4,
                                           device=torch.device(GPU)))
        equal = len(cpu) == len(gpu) and all(
            w1 == w2 and np.array_equal(x1, x2.cpu().numpy()) and np.array_equal(v1, v2.cpu().numpy())
            for (w1, x1, v1), (w2, x2, v2) in zip(cpu, gpu))
        model = os.path.join(work, "random.hsigan")
        b.save_model(b.make_net(), model)
        maps = []
        for on_device in (True, False):
            target = os.path.join(work, f"kind_map_{on_device}.tif")
            classify_to(path, model, target, GPU, tuning=dict(normalise_on_device=on_device))
            maps.append(read(target, 1))
        out[name] = dict(normalised_on_device=used, tiles=len(cpu), bands_and_validity_bit_equal=bool(equal),
                         same_map=bool((maps[0] == maps[1]).all()), nodata_pixels=int((maps[0] == 0).sum()))
        print(f"  {name}: {json.dumps(out[name])}", flush=True)
    return out


def environment():
    import torch
    env = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), python=platform.python_version(),
               torch=torch.__version__, cpu_count=os.cpu_count(), cpu_threads=torch.get_num_threads())
    if torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    import rasterio
    env.update(rasterio=rasterio.__version__, gdal=rasterio.__gdal_version__, numpy=np.__version__)
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", default=os.path.join(ROOT, ".devdata"))
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS-cuda"))
    parser.add_argument("--sections", nargs="+", default=["classify", "training", "throughput", "whole"])
    parser.add_argument("--repeats", type=int, default=2, help="layouts: repeats per layout")
    parser.add_argument("--variant", default="zlevel6", choices=["zlevel6", "switch", "open_in_threads"],
                        help="layouts: the variant timed beside the defaults")
    parser.add_argument("--make-inputs", metavar="DIR")
    parser.add_argument("--gpu", default="cuda", help="cpu: dry run without a GPU (figures mean nothing then)")
    parser.add_argument("--train-once", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global GPU
    GPU = args.gpu
    if args.make_inputs:
        return make_inputs(args.make_inputs)
    if args.train_once:
        return train_once(json.load(open(args.train_once)))
    work = tempfile.mkdtemp(prefix="hsigan_cuda_")
    results = dict(environment=environment())
    print(json.dumps(results["environment"]), flush=True)
    sections = dict(classify=lambda: check_classify(args.inputs, work),
                    training=lambda: check_training(args.inputs, work),
                    throughput=lambda: throughput(["cuda", "cpu"]),
                    whole=lambda: whole_raster(args.size, work),
                    layouts=lambda: layouts(args.size, work, args.repeats, args.variant),
                    smoothing=lambda: check_smoothing(args.inputs, work),
                    normalise=lambda: normalise_check(work))
    for name in args.sections:
        print(f"[{name}]", flush=True)
        started = time.perf_counter()
        try:
            results[name] = sections[name]()
        except Exception:
            results[name] = dict(error=traceback.format_exc()[-3000:])
            print(results[name]["error"], flush=True)
        results.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
        if name == "classify":
            print(json.dumps(results[name], indent=1), flush=True)
        with open(args.out + ".json", "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
