"""Inference benchmark (issue 4): dense vs patch-per-pixel prediction, achieved FLOP/s against measured
matmul FLOP/s, and time / peak memory of a whole classify() on synthetic 200-band rasters.

    .venv/bin/python bench/inference.py                 # everything; writes bench/RESULTS-inference.{md,json}
    .venv/bin/python bench/inference.py --sizes 1024    # quicker
    .venv/bin/python bench/inference.py --one PATH.json # internal: one classify() in this (fresh) process

Rasters are int16, 200 bands, tiled 256 x 256, DEFLATE-compressed GeoTIFFs written to --work (default a
temporary folder beside this file) and deleted afterwards; each size is classified in a fresh subprocess
so peak RSS (VmHWM; see peak_rss) is that run's alone. The model is SpectralSpatialNet with the default
widths (200 bands, 16 classes, patch 7), random weights with batch-norm statistics from one
calibration pass. Figures are medians of repeats within this one run.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BANDS, CLASSES, PATCH = 200, 16, 7
MEAN, STD = 1500.0, 400.0  # of the synthetic int16 data


def timed(fn, repeats):
    """Median wall seconds and median CPU seconds (all threads of this process) of fn()."""
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(wall), statistics.median(cpu)


def matmul_flops(n=2048, repeats=7):
    """(FLOP per wall second, FLOP per CPU second) of an fp32 n x n matmul."""
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    wall, cpu = timed(lambda: torch.matmul(a, b), repeats)
    return 2 * n ** 3 / wall, 2 * n ** 3 / cpu


def conv_flops(model, height, width):
    """Multiply-adds x 2 of every convolution for an input of height x width (no padding anywhere)."""
    import torch
    total, h, w = 0, height, width
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0]
            h, w = h - (k - 1), w - (k - 1)
            total += 2 * module.in_channels * module.out_channels * k * k * h * w
    return total


def make_net(seed=0):
    import torch
    from models.classifier import SpectralSpatialNet
    torch.manual_seed(seed)
    net = SpectralSpatialNet(BANDS, CLASSES, PATCH)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        net.train()(torch.randn(2, BANDS, 48, 48))
        net.head.weight.mul_(3)
    return net.eval()


def save_model(net, path):
    from hsigan_qgis import model_file
    from hsigan_qgis.styling import default_colours
    metadata = dict(bands=BANDS, class_ids=list(range(1, CLASSES + 1)), class_names=[f"class {i}" for i in
                    range(1, CLASSES + 1)], class_colours=default_colours(CLASSES), mean=[MEAN] * BANDS,
                    std=[STD] * BANDS, bad_bands=[], patch_size=PATCH, wavelengths=None,
                    architecture=dict(name="SpectralSpatialNet", bands=BANDS, classes=CLASSES, patch_size=PATCH))
    model_file.save(path, metadata, {"classifier": net.state_dict()})


def synthetic_block(rows, cols, row0, col0, rng):
    """int16 (BANDS, rows, cols): 6 smooth abundance fields mixing 6 spectra, plus noise."""
    y = (np.arange(row0, row0 + rows, dtype=np.float32) / 97.0)[:, None]
    x = (np.arange(col0, col0 + cols, dtype=np.float32) / 89.0)[None, :]
    fields = np.stack([np.sin(x * (k + 1) * 0.7 + y * 0.5 * k) * np.cos(y * (k + 2) * 0.3 - x * 0.2 * k)
                       for k in range(6)])
    fields = np.exp(2 * fields)
    fields /= fields.sum(0, keepdims=True)
    spectra = np.random.default_rng(7).uniform(800, 2400, size=(BANDS, 6)).astype(np.float32)
    cube = (spectra @ fields.reshape(6, -1)).reshape(BANDS, rows, cols)
    cube += rng.integers(-40, 40, size=cube.shape, dtype=np.int16)
    return cube.astype(np.int16)


TILED = dict(driver="GTiff", tiled=True, blockxsize=256, blockysize=256, BIGTIFF="YES")
LAYOUTS = {"GeoTIFF, tiled 256, DEFLATE": dict(TILED, compress="deflate", zlevel=1, predictor=2),
           "GeoTIFF, tiled 256, uncompressed": dict(TILED),
           "ENVI BSQ": dict(driver="ENVI", interleave="bsq")}


def write_raster(path, size, **layout):
    """The synthetic size^2 x BANDS int16 scene in a layout of LAYOUTS (default: tiled DEFLATE GeoTIFF)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    rng = np.random.default_rng(size)
    profile = dict(width=size, height=size, count=BANDS, dtype="int16", crs="EPSG:32610",
                   transform=from_origin(600000.0, 4100000.0, 1.0, 1.0), num_threads="ALL_CPUS")
    profile.update(layout or LAYOUTS["GeoTIFF, tiled 256, DEFLATE"])
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 256):
            rows = min(256, size - row)
            dst.write(synthetic_block(rows, size, row, 0, rng), window=Window(0, row, size, rows))


def read_only_pass(path, threads, side=512):
    """Wall seconds of the limit for classify: every band of every pixel read once and cast to float32, in
    side^2 windows by `threads` threads, each with its own handle (no halo, no validity, no model)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import rasterio
    from rasterio.windows import Window
    with rasterio.open(path) as src:
        height, width = src.height, src.width
    local, handles = threading.local(), []

    def load(window):
        if not hasattr(local, "src"):
            local.src = rasterio.open(path)
            handles.append(local.src)
        local.src.read(window=window, out_dtype="float32")

    windows = [Window(c, r, min(side, width - c), min(side, height - r))
               for r in range(0, height, side) for c in range(0, width, side)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(load, windows))
    seconds = time.perf_counter() - started
    for handle in handles:
        handle.close()
    return seconds


def layouts(size, work, model, classify_once, threads, repeats=1):
    """For each layout: read-only pass and classify() of the same file (medians of `repeats`, interleaved),
    their ratio, and whether the maps of all layouts are identical. classify_once(path, out) -> dict with
    'seconds' (and anything else worth keeping)."""
    import rasterio
    rows, first = [], None
    for name, layout in LAYOUTS.items():
        path = os.path.join(work, f"layout_{size}" + (".envi" if layout["driver"] == "ENVI" else ".tif"))
        started = time.perf_counter()
        write_raster(path, size, **layout)
        row = dict(layout=name, size=size, write_seconds=time.perf_counter() - started, read_runs=[], runs=[])
        out = os.path.join(work, "layout_map.tif")
        for _ in range(repeats):
            row["read_runs"].append(read_only_pass(path, threads))
            row["runs"].append(classify_once(path, out))
        row["read_seconds"] = statistics.median(row["read_runs"])
        row["classify_seconds"] = statistics.median(r["seconds"] for r in row["runs"])
        row["ratio"] = row["classify_seconds"] / row["read_seconds"]
        row["mpixels_per_s"] = size * size / row["classify_seconds"] / 1e6
        with rasterio.open(out) as dst:
            labels = dst.read(1)
        if first is None:
            first = labels
        row["same_map_as_first_layout"] = bool((labels == first).all())
        rows.append(row)
        print(f"  {name}: read-only {row['read_seconds']:.2f} s, classify {row['classify_seconds']:.2f} s "
              f"({row['mpixels_per_s']:.2f} Mpx/s), ratio {row['ratio']:.2f}, same map "
              f"{row['same_map_as_first_layout']}", flush=True)
        for leftover in [path, out, path + ".aux.xml", os.path.splitext(path)[0] + ".hdr",
                         os.path.splitext(out)[0] + ".qml", out + ".aux.xml"]:
            if os.path.exists(leftover):
                os.remove(leftover)
    return rows


def dense_vs_patch(repeats):
    """Pixels/s of dense tiles vs one patch per pixel (training's gather_patches path), same weights."""
    import torch
    from hsigan_qgis.predict import dense_logits, prepare_model
    from hsigan_qgis.sampling import gather_patches

    net = make_net()
    dense_net = prepare_model(make_net(), torch.device("cpu"))  # same seed: same weights
    r = PATCH // 2
    tile = 256
    rng = np.random.default_rng(0)
    block = torch.from_numpy((synthetic_block(tile + 2 * r, tile + 2 * r, 0, 0, rng).astype(np.float32) - MEAN) / STD)
    x = block[None]
    side = 64  # patch-per-pixel is slow: a 64 x 64 corner of the same tile
    rows, cols = np.mgrid[:side, :side]
    rows, cols = rows.ravel(), cols.ravel()

    def patchwise():
        out = []
        with torch.inference_mode():
            for start in range(0, len(rows), 512):
                patches = gather_patches(block, rows[start:start + 512], cols[start:start + 512], r)
                out.append(net(patches).flatten(1).argmax(1))
        return torch.cat(out).reshape(side, side)

    dense_labels = dense_logits(dense_net, x).argmax(1)[0]
    patch_labels = patchwise()
    identical = bool(torch.equal(patch_labels, dense_labels[:side, :side]))
    dense, patch = [], []
    for _ in range(repeats):  # interleaved, so both see the same load on a shared machine
        dense.append(timed(lambda: dense_logits(dense_net, x), 1))
        patch.append(timed(patchwise, 1))
    dense_wall, dense_cpu = (statistics.median(t) for t in zip(*dense))
    patch_wall, patch_cpu = (statistics.median(t) for t in zip(*patch))
    flops = conv_flops(dense_net, tile + 2 * r, tile + 2 * r)
    return dict(tile=tile, patch_pixels=side * side, labels_identical=identical,
                dense_pixels_per_s=tile * tile / dense_wall, patch_pixels_per_s=side * side / patch_wall,
                dense_pixels_per_cpu_s=tile * tile / dense_cpu, patch_pixels_per_cpu_s=side * side / patch_cpu,
                speedup_wall=(tile * tile / dense_wall) / (side * side / patch_wall),
                speedup_cpu=(tile * tile / dense_cpu) / (side * side / patch_cpu),
                dense_flops_per_tile=flops, dense_flop_per_s=flops / dense_wall,
                dense_flop_per_cpu_s=flops / dense_cpu, flops_per_pixel_dense=flops / tile ** 2,
                flops_per_pixel_patch=conv_flops(net, PATCH, PATCH), raw_dense=dense, raw_patch=patch)


def one_run(spec_path):
    """Classify spec['input'] in this process; print JSON with seconds, read share and peak RSS."""
    spec = json.load(open(spec_path))
    from hsigan_qgis.config import ClassifyConfig
    from hsigan_qgis.classify import classify
    started, cpu = time.perf_counter(), time.process_time()
    result = classify(ClassifyConfig(input=spec["input"], model=spec["model"], output=spec["output"],
                                     device="cpu"))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps(dict(seconds=seconds, classify_seconds=result.seconds, read_seconds=result.read_seconds,
                          cpu_seconds=cpu, peak_rss_bytes=peak_rss())))


def classify_in_child(work, path, model, out):
    """One classify() at the defaults on CPU in a fresh process: its seconds, CPU seconds and peak RSS."""
    spec = os.path.join(work, "spec.json")
    json.dump(dict(input=path, model=model, output=out), open(spec, "w"))
    done = subprocess.run([sys.executable, __file__, "--one", spec], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss():
    """Peak resident memory of this process in bytes. Linux's getrusage ru_maxrss carries over the parent's
    peak across fork + exec (a 2.8 GB bench parent made every child "peak" at 2.8 GB), so VmHWM of this
    process's own address space is read where /proc has it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def whole_rasters(sizes, work, model):
    rows = []
    for size in sizes:
        need = size * size * BANDS * 2
        free = shutil.disk_usage(work).free
        if free < need * 0.8 + (2 << 30):
            rows.append(dict(size=size, skipped=f"{free / 2**30:.1f} GiB free, need about {need / 2**30:.1f} GiB"))
            continue
        path = os.path.join(work, f"synthetic_{size}.tif")
        started = time.perf_counter()
        write_raster(path, size)
        write_s = time.perf_counter() - started
        spec = os.path.join(work, f"spec_{size}.json")
        out = os.path.join(work, f"map_{size}.tif")
        json.dump(dict(input=path, model=model, output=out), open(spec, "w"))
        done = subprocess.run([sys.executable, __file__, "--one", spec], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(size=size, pixels=size * size, file_bytes=os.path.getsize(path), raw_bytes=need,
                   write_seconds=write_s, pixels_per_s=size * size / row["seconds"],
                   cpu_s_per_mpixel=row["cpu_seconds"] / (size * size / 1e6),
                   read_share=row["read_seconds"] / row["classify_seconds"])
        rows.append(row)
        print(f"  {size}^2: {row['seconds']:.1f} s ({row['cpu_seconds']:.0f} CPU s), "
              f"{row['pixels_per_s'] / 1e3:.1f} kpx/s, read "
              f"{100 * row['read_share']:.0f} %, peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB", flush=True)
        for leftover in (path, out, out + ".aux.xml", os.path.splitext(out)[0] + ".qml", spec):
            if os.path.exists(leftover):
                os.remove(leftover)
    return rows


def report(results, md_path):
    d = results["dense_vs_patch"]
    m_wall, m_cpu = results["matmul_flop_per_s"]
    ok = lambda flag: "yes" if flag else "no"  # noqa: E731
    share_wall, share_cpu = d["dense_flop_per_s"] / m_wall, d["dense_flop_per_cpu_s"] / m_cpu
    load = results.get("load_average")
    load_text = (f"load average {load[0]:.1f} at the start and {load[1]:.1f} at the end on {os.cpu_count()} cores"
                 if load else "load average 7-13 on 2 cores")
    lines = ["# Inference benchmark (issues 4 and 15)", "",
             f"Run {results['date']} on {results['machine']}, torch {results['torch']}, {results['threads']} torch "
             "threads, CPU only (GPU figures: bench/RESULTS-cuda.md). The machine was shared with other engineers' "
             f"benchmarks and tests while this ran ({load_text}), so wall-clock figures are low and noisy; "
             "per-CPU-second figures (time.process_time / getrusage, all threads of the process) and ratios "
             "measured within this one run are the meaningful part. Medians of repeats; dense and patch runs "
             "interleaved.", "",
             "| measure | wall clock | per CPU second | target | met |", "|---|---|---|---|---|",
             f"| dense pixels/s (tile {d['tile']}, 200 bands, patch {PATCH}) | {d['dense_pixels_per_s']:,.0f} | "
             f"{d['dense_pixels_per_cpu_s']:,.0f} | | |",
             f"| patch-per-pixel pixels/s (same weights, training's gather_patches path) | "
             f"{d['patch_pixels_per_s']:,.0f} | {d['patch_pixels_per_cpu_s']:,.0f} | | |",
             f"| dense / patch-per-pixel (labels identical on {d['patch_pixels']} px: {d['labels_identical']}) | "
             f"{d['speedup_wall']:.1f}x | {d['speedup_cpu']:.1f}x | >= 30x | "
             f"{ok(d['speedup_cpu'] >= 30 and d['labels_identical'])} |",
             f"| conv FLOPs per output pixel, dense / patch | {d['flops_per_pixel_dense'] / 1e3:,.0f} k / "
             f"{d['flops_per_pixel_patch'] / 1e3:,.0f} k (ratio {d['flops_per_pixel_patch'] / d['flops_per_pixel_dense']:.1f}) | | | |",
             f"| fp32 matmul 2048^2, GFLOP/s | {m_wall / 1e9:.1f} | {m_cpu / 1e9:.1f} | | |",
             f"| dense path, GFLOP/s (conv FLOPs counted analytically) | {d['dense_flop_per_s'] / 1e9:.1f} | "
             f"{d['dense_flop_per_cpu_s'] / 1e9:.1f} | | |",
             f"| dense path / matmul | {100 * share_wall:.0f} % | {100 * share_cpu:.0f} % | >= 30 % | "
             f"{ok(share_cpu >= 0.3)} |"]
    if results["rasters"]:
        lines += ["", "Whole classify() (one fresh process per size; int16 200-band tiled 256x256 DEFLATE GeoTIFF "
                      "input, TILE_SIZE 0 = automatic, uint8 output, CPU):", "",
                  "| pixels | file GiB (raw) | wall s | CPU s | CPU s per Mpixel | kpixels/s (wall) "
                  "| reading (thread, overlapped) | peak RSS GiB |", "|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["", "Whole rasters of 1024^2-4096^2 were not run this time (`--sizes` empty; a 4096^2 run takes "
                      "half an hour here). The earlier run (2026-11-25, the reader before issue 15, in this file's "
                      "git history) measured CPU time linear in pixels (17.0-19.4 CPU s per Mpixel) and a flat peak "
                      "RSS of 1.18-1.28 GiB from 1024^2 to 4096^2."]
    for row in results["rasters"]:
        if "skipped" in row:
            lines.append(f"| {row['size']}^2 | skipped: {row['skipped']} | | | | | | |")
            continue
        lines.append(f"| {row['size']}^2 | {row['file_bytes'] / 2**30:.2f} ({row['raw_bytes'] / 2**30:.2f}) | "
                     f"{row['seconds']:.1f} | {row['cpu_seconds']:.0f} | {row['cpu_s_per_mpixel']:.1f} | "
                     f"{row['pixels_per_s'] / 1e3:.1f} | {row['read_seconds']:.1f} s = "
                     f"{100 * row['read_share']:.0f} % of wall | {row['peak_rss_bytes'] / 2**30:.2f} |")
        if row.get("note"):
            lines.append(f"| | {row['note']} | | | | | | |")
    done = [r for r in results["rasters"] if "skipped" not in r]
    if len(done) >= 2:
        per = [r["cpu_s_per_mpixel"] for r in done]
        wall = [r["seconds"] / r["pixels"] * 1e6 for r in done]
        rss = [r["peak_rss_bytes"] / 2**30 for r in done]
        lines += ["", f"Time linear in pixels: CPU s per Mpixel {min(per):.1f}-{max(per):.1f} (max/min "
                      f"{max(per) / min(per):.2f}); wall s per Mpixel {min(wall):.1f}-{max(wall):.1f} (max/min "
                      f"{max(wall) / min(wall):.2f}). Peak RSS {min(rss):.2f}-{max(rss):.2f} GiB (target: flat, "
                      f"< 2 GiB at 4096^2)."]
    if results.get("layouts"):
        per_pixel = d["flops_per_pixel_dense"]
        lines += ["", f"Read-only pass vs classify() (defaults: TILE_SIZE 0 = automatic, CPU; one fresh process "
                      f"each), {results['layouts'][0]['size']}^2 x {BANDS} bands int16. Read-only pass = every band "
                      f"of every pixel read and cast to float32 in 512^2 windows by {os.cpu_count()} threads, each "
                      "with its own handle: the limit for classify on this machine.", "",
                  "| layout | read-only s | classify s (CPU s) | classify / read-only | kpx/s | conv GFLOP per "
                  "CPU s (% of matmul's) | peak RSS GiB | same map as the first layout |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in results["layouts"]:
            run = row["runs"][len(row["runs"]) // 2]
            flops = per_pixel * row["size"] ** 2 / run["cpu_seconds"]
            lines.append(f"| {row['layout']} | {row['read_seconds']:.2f} | {row['classify_seconds']:.1f} "
                         f"({run['cpu_seconds']:.1f}) | {row['ratio']:.1f}x | {row['mpixels_per_s'] * 1e3:.1f} | "
                         f"{flops / 1e9:.1f} ({100 * flops / m_cpu:.0f} %) | {run['peak_rss_bytes'] / 2**30:.2f} | "
                         f"{ok(row['same_map_as_first_layout'])} |")
    if results.get("layouts"):
        shares = [per_pixel * r["size"] ** 2 / r["runs"][len(r["runs"]) // 2]["cpu_seconds"] / m_cpu
                  for r in results["layouts"]]
        rss = max(r["runs"][len(r["runs"]) // 2]["peak_rss_bytes"] for r in results["layouts"]) / 2**30
        lines += ["", f"Against issue 15's CPU targets: the classifier's dense path reaches {100 * share_cpu:.0f} % of "
                      f"the matmul FLOP/s per CPU second (target >= 50 %: {ok(share_cpu >= 0.5)}); a whole classify(), "
                      f"whose CPU seconds also hold decoding, validity, normalisation, writing and importing torch "
                      f"in its fresh process, {100 * min(shares):.0f}-{100 * max(shares):.0f} % ({ok(min(shares) >= 0.5)}). "
                      f"Peak RSS at most {rss:.2f} GiB (target <= 2 GiB: {ok(rss <= 2)}). On 2 cores the job is "
                      "compute-bound: classify takes several times the read-only pass, which is why the read-only "
                      "ratio target is a GPU target (bench/RESULTS-cuda.md)."]
    lines += ["", "How (hsigan_qgis/block_reader.py, classify.py): the raster is read in the file's block order "
                  "(strips of block rows, left to right; ENVI BSQ and strip layouts in full-width strips read band "
                  "after band), every block decoded once, GDAL decoding straight into each chunk's buffer; the "
                  "halo rows and columns a tile needs from its neighbours are carried over from the previous chunk, "
                  "not read again. One reading thread on CPU (more only took cores from torch), one per core on "
                  "CUDA. The classifier runs fully convolutionally on each tile under torch.inference_mode, with "
                  "every batch norm folded into the convolution before it and channels-last tensors; one tile per "
                  "pass on CPU. Memory: the chunks in flight (at most 128 MiB each on CPU), 2 x halo full-width rows "
                  "of carry, GDAL's block cache capped at 512 MiB: bounded by tile size, not by the raster.", ""]
    with open(md_path, "w") as stream:
        stream.write("\n".join(lines))
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048, 4096],
                        help="sides of the whole-raster runs (none: skip them)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layouts", type=int, default=1024, metavar="SIZE",
                        help="side of the read-only vs classify() comparison on three layouts (0: skip)")
    parser.add_argument("--layout-repeats", type=int, default=1)
    parser.add_argument("--work", default=None, help="folder for the synthetic rasters (deleted after)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS-inference"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json")
    args = parser.parse_args()
    if args.one:
        return one_run(args.one)
    if args.report_only:
        return report(json.load(open(args.out + ".json")), args.out + ".md")
    import torch
    work = tempfile.mkdtemp(prefix="bench-inference-", dir=args.work or os.path.join(ROOT, "bench"))
    try:
        results = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load_average=[os.getloadavg()[0]],
                       machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                       torch=torch.__version__, threads=torch.get_num_threads())
        print("matmul ...", flush=True)
        results["matmul_flop_per_s"] = matmul_flops()
        print("dense vs patch-per-pixel ...", flush=True)
        results["dense_vs_patch"] = dense_vs_patch(args.repeats)
        assert results["dense_vs_patch"]["labels_identical"], "dense and patch-per-pixel labels differ"
        model = os.path.join(work, "bench.hsigan")
        save_model(make_net(), model)
        print("whole rasters ...", flush=True)
        results["rasters"] = whole_rasters(args.sizes, work, model)
        if args.layouts:
            print(f"read-only pass vs classify() on three layouts, {args.layouts}^2 ...", flush=True)
            results["layouts"] = layouts(args.layouts, work, model, lambda path, out: classify_in_child(
                work, path, model, out), threads=os.cpu_count(), repeats=args.layout_repeats)
        results["load_average"].append(os.getloadavg()[0])
        json.dump(results, open(args.out + ".json", "w"), indent=1)
        report(results, args.out + ".md")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
