"""Peak memory and time of hsigan train against how far apart the labels lie (issue 14).

A large raster is made without copying data: Indian Pines (145 x 145 x 200, /work/shared/data) written
once as a GeoTIFF and repeated 20 x 20 in a VRT (of a VRT: 2900 x 2900 px, 200 bands: 6.7 GB as float32). Labels:
two clusters of points, one near the top-left corner of a square of the given side and one near its
bottom-right corner, so the labels' window is the square. Each run is `hsigan train` (GAN none, 1 epoch,
no validation) in a fresh process that reports its own peak resident memory (ru_maxrss).

    .venv/bin/python bench/train_memory.py [--out bench] [--sides 145 1450 2900] [--defaults]

Prints a table and writes bench/RESULTS-train-memory.json (with --defaults: every training parameter at its
default, GAN ssgan since round 14, instead of GAN none, 1 epoch, no validation; RESULTS-train-memory-defaults.json). The helpers (make_large_vrt, write_points,
run_measured) also serve tests/test_train_memory.py.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "indian_pines")

# Runs the CLI and prints its own peak resident memory (kB) on stderr when it exits, however it exits.
# Peak memory of this process's own address space: VmHWM, which exec() resets. (getrusage's ru_maxrss
# also holds the RSS the process had before exec, i.e. the parent's at fork: a big pytest parent would
# show up as the job's peak.)
WRAPPER = ("import atexit, sys\n"
           "def peak():\n"
           "    with open('/proc/self/status') as status:\n"
           "        return next(int(l.split()[1]) for l in status if l.startswith('VmHWM:'))\n"
           "atexit.register(lambda: sys.stderr.write('PEAK_RSS_KB %d\\n' % peak()))\n"
           "from hsigan_qgis.cli import main\n"
           "sys.exit(main(sys.argv[1:]))\n")


def make_large_vrt(source, path, repeat):
    """`source` repeated repeat x repeat times, as a VRT of a VRT (a flat VRT of 30 x 30 copies of a
    204-band file has 183,600 sources and costs GDAL 0.5 GB to open, which would swamp what is measured)."""
    inner = max(d for d in range(1, int(np.sqrt(repeat)) + 1) if repeat % d == 0)
    if inner == 1:
        return make_grid_vrt(source, path, repeat, repeat)
    middle = make_grid_vrt(source, path[:-4] + f"_{inner}x{inner}.vrt", inner, inner)
    return make_grid_vrt(middle, path, repeat // inner, repeat // inner)


def make_grid_vrt(source, path, repeat_y, repeat_x):
    """A VRT showing `source` repeat_y x repeat_x times side by side (same georeference origin, extended)."""
    import rasterio

    with rasterio.open(source) as src:
        h, w, count, dtype = src.height, src.width, src.count, src.dtypes[0]
        t, crs = src.transform, src.crs
    vrt_type = {"int16": "Int16", "uint16": "UInt16", "float32": "Float32", "int32": "Int32",
                "uint8": "Byte", "float64": "Float64"}[dtype]
    name = os.path.relpath(os.path.abspath(source), os.path.dirname(os.path.abspath(path)))
    parts = [f'<VRTDataset rasterXSize="{w * repeat_x}" rasterYSize="{h * repeat_y}">',
             f"<SRS>{crs.to_wkt()}</SRS>" if crs else "",
             f"<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>"]
    for band in range(1, count + 1):
        parts.append(f'<VRTRasterBand dataType="{vrt_type}" band="{band}">')
        for i in range(repeat_y):
            for j in range(repeat_x):
                parts.append(f'<SimpleSource><SourceFilename relativeToVRT="1">{name}</SourceFilename>'
                             f'<SourceBand>{band}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                             f'<DstRect xOff="{j * w}" yOff="{i * h}" xSize="{w}" ySize="{h}"/></SimpleSource>')
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    with open(path, "w") as out:
        out.write("\n".join(parts))
    return path


def write_points(path, raster, rows, cols, classes, field="cls"):
    """One point per pixel centre of `raster` (its CRS), integer field `field`."""
    import rasterio
    from osgeo import ogr, osr

    with rasterio.open(raster) as src:
        t, wkt = src.transform, src.crs.to_wkt()
    if os.path.exists(path):
        os.remove(path)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer("labels", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn(field, ogr.OFTInteger))
    layer.StartTransaction()
    for r, c, k in zip(rows, cols, classes):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField(field, int(k))
        x, y = t * (c + 0.5, r + 0.5)
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(x, y)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    source = None
    return path


def corner_points(side, per_corner, step=3, margin=4):
    """(rows, cols, classes): per_corner points on a lattice near (margin, margin) and as many near
    (side - margin, side - margin); classes 1 and 2 alternate so both corners hold both."""
    k = int(np.ceil(np.sqrt(per_corner)))
    lattice = np.array([(i * step, j * step) for i in range(k) for j in range(k)][:per_corner])
    near = lattice + margin
    far = side - 1 - margin - lattice
    points = np.concatenate([near, far])
    return points[:, 0], points[:, 1], np.arange(len(points)) % 2 + 1


def run_measured(args, timeout=900):
    """(peak RSS in MiB, seconds, completed process) of `hsigan <args>` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER] + list(args), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    return (int(peak[-1].split()[1]) / 1024 if peak else None), seconds, done


def indian_pines_tif(work):
    import rasterio
    from rasterio.transform import from_origin

    cube = np.load(os.path.join(DATA, "Indian_pines_corrected.npy"))
    data = np.ascontiguousarray(cube.transpose(2, 0, 1))
    path = os.path.join(work, "indian_pines.tif")
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs="EPSG:32616", transform=from_origin(500000, 4500000, 20, 20),
                       tiled=True, blockxsize=64, blockysize=64) as dst:
        dst.write(data)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "bench"))
    parser.add_argument("--sides", type=int, nargs="+", default=[145, 1450, 2900])
    parser.add_argument("--labels", type=int, nargs="+", default=[16, 160],
                        help="points per corner; the larger counts run at the largest side only")
    parser.add_argument("--defaults", action="store_true", help="train at the defaults (see above)")
    args = parser.parse_args()
    options = [] if args.defaults else ["--gan", "none", "--epochs", "1", "--validation-fraction", "0"]
    work = tempfile.mkdtemp(prefix="hsigan_train_memory_")
    big = make_large_vrt(indian_pines_tif(work), os.path.join(work, "big.vrt"), 20)
    cases = [(side, args.labels[0]) for side in args.sides] + [(max(args.sides), n) for n in args.labels[1:]]
    rows = []
    for side, per_corner in cases:
        r, c, k = corner_points(side, per_corner)
        gpkg = write_points(os.path.join(work, f"labels_{side}_{per_corner}.gpkg"), big, r, c, k)
        model = os.path.join(work, f"m_{side}_{per_corner}.hsigan")
        peak, seconds, done = run_measured(["train", "--input", big, "--labels", gpkg, "--class-field", "cls",
                                            *options, "--output-model", model, "--device", "cpu", "--quiet"])
        if done.returncode != 0:
            raise SystemExit(f"train failed for side {side}: {done.stderr[-2000:]}")
        row = dict(spread=f"{side}x{side}", labels=int(len(r)), peak_rss_mib=round(peak, 1), seconds=round(seconds, 1),
                   label_window_float32_gib=round(side * side * 200 * 4 / 2 ** 30, 2))
        rows.append(row)
        print(json.dumps(row), flush=True)
    machine = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(), python=platform.python_version(),
                   omp_threads=os.environ.get("OMP_NUM_THREADS", "1"))
    os.makedirs(args.out, exist_ok=True)
    name = "RESULTS-train-memory-defaults.json" if args.defaults else "RESULTS-train-memory.json"
    with open(os.path.join(args.out, name), "w") as out:
        json.dump(dict(raster="Indian Pines repeated 20 x 20 in a VRT (of a VRT: 2900 x 2900 x 200, int16)",
                       command="hsigan train " + " ".join(options + ["--device", "cpu"]),
                       machine=machine, runs=rows), out, indent=1)
    print("| label spread (px) | labels | peak RSS (MiB) | time (s) | label window as float32 (GiB) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['spread']} | {row['labels']} | {row['peak_rss_mib']} | {row['seconds']} | "
              f"{row['label_window_float32_gib']} |")


if __name__ == "__main__":
    main()
