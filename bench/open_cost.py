"""Issue 15, run 16: what a reading thread's first chunk waits for. Run 14's timeline (bench/RESULTS-cuda.md) shows
the 16 reading threads of a GeoTIFF classify starting their first reads 20 ms apart, and the early ones' reads
ending only when the last thread has started. Each thread opens its own handle first: is opening a GeoTIFF that
slow, serialised, and does it stall reads running beside it? On bench/inference.py's synthetic SIZE^2 x 200-band
int16 layouts:
  serial_open_ms      median of 16 rasterio.open + close in one thread (and with GDAL_DISABLE_READDIR_ON_OPEN)
  parallel_open_s     16 threads opening one handle each, wall seconds (_locked: one at a time under a lock)
  read_alone_s        one 256^2 all-band read (read_raw) alone, median of 5
  read_beside_opens_s a read of another chunk while 15 other threads open handles (run 16's figure is void:
                      it read outside the raster)
Usage: python bench/open_cost.py SIZE OUT.json"""
import json
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))


def opens(path, n=16):
    import rasterio
    times = []
    for _ in range(n):
        s = time.perf_counter()
        rasterio.open(path).close()
        times.append(time.perf_counter() - s)
    return round(1000 * statistics.median(times), 2)


def parallel_opens(path, n=16, locked=False):
    """Wall seconds of n threads opening one handle each, together (locked: one at a time, under a lock)."""
    import contextlib

    import rasterio
    handles, barrier, lock = [], threading.Barrier(n), threading.Lock()

    def one():
        barrier.wait()
        with lock if locked else contextlib.nullcontext():
            handles.append(rasterio.open(path))
    threads = [threading.Thread(target=one) for _ in range(n)]
    s = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - s
    for h in handles:
        h.close()
    return round(wall, 3)


def main(size, out):
    import tempfile

    import rasterio

    from cuda import bench_inference
    from hsigan_qgis.raster import read_raw
    b = bench_inference()
    work = tempfile.mkdtemp(prefix="opens_")
    rows = []
    for name, layout in b.LAYOUTS.items():
        path = os.path.join(work, "layout" + (".envi" if layout["driver"] == "ENVI" else ".tif"))
        b.write_raster(path, size, **layout)
        row = dict(layout=name, serial_open_ms=opens(path))
        if layout["driver"] != "ENVI":  # ENVI needs the folder's listing to find its .hdr
            os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] = "EMPTY_DIR"
            row["serial_open_ms_no_readdir"] = opens(path)
            del os.environ["GDAL_DISABLE_READDIR_ON_OPEN"]
        row["parallel_open_s"] = parallel_opens(path)
        row["parallel_open_locked_s"] = parallel_opens(path, locked=True)
        with rasterio.open(path) as d:
            alone = []
            for k in range(5):
                s = time.perf_counter()
                read_raw(d, 256 * k, 0, 256, 256)
                alone.append(time.perf_counter() - s)
            row["read_alone_s"] = round(statistics.median(alone), 4)
            took = {}

            def reader():
                time.sleep(0.002)
                s = time.perf_counter()
                read_raw(d, d.height - 256, d.width - 256, 256, 256)  # a chunk not read before
                took["s"] = time.perf_counter() - s
            t = threading.Thread(target=reader)
            t.start()
            row["parallel_open_15_beside_read_s"] = parallel_opens(path, 15)
            t.join()
            row["read_beside_opens_s"] = round(took["s"], 4)
        print(json.dumps(row), flush=True)
        rows.append(row)
        for f in os.listdir(work):
            os.remove(os.path.join(work, f))
    json.dump(dict(size=size, cpus=os.cpu_count(), rasterio=rasterio.__version__, gdal=rasterio.__gdal_version__,
                   rows=rows), open(out, "w"), indent=1)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
