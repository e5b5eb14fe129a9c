"""Issue 15 diagnosis on a GPU machine (run 7, bench/RESULTS-cuda.md): where does classify() spend the time
beyond the read-only pass? Needs torch (CUDA), numpy and rasterio; writes OUTJSON and prints each run.
Each timed classify runs in a fresh process (as qgis_process would: torch's pinned-memory cache empty),
after a small warm-up classify in that process (CUDA context). Consumer-side phases timed by wrapping
engine functions from outside (no engine change):
  wait   = the consumer (main thread) waiting for the reading threads
  decode = read_window (GDAL decode into the buffer + validity), summed over reading threads; on the GPU
           path DeviceNormalisation.read (decode in the stored type), and normalise = its into() (the
           copy to the GPU, judging and normalising there, queued)
  compute = tile_results: forward pass and labels back to the host (synchronised; the copies to the GPU
            before it are not counted)
  write  = RasterWriter.write ; finish = RasterWriter.finish (read-back verification, move)
  first/last_chunk_done = seconds from the start of classify() at which the first/last chunk's read ended
Usage: python bench/cuda_phases.py all 2048 OUT.json [cuda|cpu] [case,case...]   (one: internal)
ALLOC=1 also times page-locked against ordinary allocations and pageable copies to the GPU.
Case 'profile': the default run under torch.profiler; writes a chrome trace (chrome://tracing, Perfetto) and the
busiest operators (.txt) per layout to TRACE_DIR (default: the temporary folder), to see whether the copies
the reading threads queue on the default CUDA stream delay the forward passes (issue 15's open question).
The GPU timeline (kernels, copies, their streams) is whole; the CPU operators are the main thread's only (torch
2.13 on this CPU recorded none of the computing thread's), so read the CPU threads from the phases above.
"""
import inspect, json, os, subprocess, sys, time, statistics, threading
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))


def one(case):
    import torch
    from hsigan_qgis import classify as C, block_reader as B, raster_writer as W
    from hsigan_qgis.config import ClassifyConfig
    dev = case["device"]
    lock = threading.Lock()
    acc = dict(wait=0.0, decode=0.0, normalise=0.0, compute=0.0, write=0.0, finish=0.0)
    spans = []
    t0 = [0.0]

    def timed(name, fn, sync=False, span=False):
        def wrapper(*a, **k):
            s = time.perf_counter()
            r = fn(*a, **k)
            if sync and dev == "cuda":
                torch.cuda.synchronize()
            e = time.perf_counter()
            with lock:
                acc[name] += e - s
                if span:
                    spans.append((round(s - t0[0], 3), round(e - t0[0], 3)))
            return r
        return wrapper

    B.read_window = timed("decode", B.read_window, span=True)  # the CPU path; the GPU path:
    from hsigan_qgis.device_normalise import DeviceNormalisation as D
    D.read = timed("decode", D.read)  # stored values
    D.into = timed("normalise", D.into, span=True)  # to the GPU, judged and normalised there (not synchronised)
    orig_ahead = B._read_ahead

    timeline = []  # (what, thread, start, end) in seconds from the start of classify(): the run 14 diagnosis

    def event(what, s, e):
        with lock:
            timeline.append((what, threading.current_thread().name, round(s - t0[0], 4), round(e - t0[0], 4)))

    def ahead(path, reads, load_one, *a, **k):  # the consumer's waits for reads
        def load_timed(dataset, read):
            s = time.perf_counter()
            try:
                return load_one(dataset, read)
            finally:
                event("read", s, time.perf_counter())
        g = orig_ahead(path, reads, load_timed, *a, **k)
        while True:
            s = time.perf_counter()
            try:
                item = next(g)
            except StopIteration:
                return
            finally:
                e = time.perf_counter()
                acc["wait"] += e - s
                event("wait", s, e)
            yield item
    B._read_ahead = ahead
    compute_timed = timed("compute", C.tile_results, sync=True)

    def compute_spans(*a, **k):
        s = time.perf_counter()
        try:
            return compute_timed(*a, **k)
        finally:
            event("compute", s, time.perf_counter())
    C.tile_results = compute_spans
    engine_stats = {}
    orig_classify_inner = C._classify

    def classify_inner(*a, **k):  # its stats dict (compute_wait_seconds: this thread waiting for the computing one)
        engine_stats["stats"] = inspect.signature(orig_classify_inner).bind(*a, **k).arguments["stats"]
        event("setup_done", time.perf_counter(), time.perf_counter())
        return orig_classify_inner(*a, **k)
    C._classify = classify_inner
    W.RasterWriter.write = timed("write", W.RasterWriter.write)
    W.RasterWriter.finish = timed("finish", W.RasterWriter.finish)
    for name, value in case.get("writer", {}).items():  # raster_writer settings of a variant
        setattr(W, name, value)
    for name, value in case.get("engine", {}).items():  # "module.NAME": value, engine settings of a variant
        module, attribute = name.split(".")
        setattr({"classify": C, "block_reader": B}[module], attribute, value)
    # warm-up: CUDA context, cuDNN, a small raster
    C.classify(ClassifyConfig(input=case["warm"], model=case["model"], output=case["out"] + ".warm.tif", device=dev))
    for k in acc:
        acc[k] = 0.0
    spans.clear()
    timeline.clear()
    kw = dict(case.get("cfg", {}))
    tuning = dict(case.get("tuning", {}))
    if case["name"] == "switch":
        sys.setswitchinterval(0.0005)
    if dev == "cuda":
        torch.cuda.synchronize()
    profiler = None
    if case["name"] == "profile":  # a torch profiler trace of the run (the main thread and the CUDA streams)
        from torch.profiler import ProfilerActivity, profile
        profiler = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else []))
        profiler.__enter__()
    t0[0] = time.perf_counter()
    res = C.classify(ClassifyConfig(input=case["path"], model=case["model"], output=case["out"], device=dev, **kw), **tuning)
    wall = time.perf_counter() - t0[0]
    if profiler is not None:
        profiler.__exit__(None, None, None)
        trace = os.path.join(os.environ.get("TRACE_DIR", os.path.dirname(case["out"])),
                             "trace-" + "".join(c if c.isalnum() else "-" for c in case["layout"]))
        with open(trace + ".txt", "w") as f:
            f.write(profiler.key_averages().table(row_limit=30, sort_by="self_cuda_time_total" if dev == "cuda"
                                                  else "self_cpu_time_total"))
        profiler.export_chrome_trace(trace + ".json")
    import rasterio
    with rasterio.open(case["out"]) as d:
        labels = d.read(1)
    import hashlib
    out = dict(case=case["name"], wall=round(wall, 3), read_threads=res.read_threads,
               phases={k: round(v, 3) for k, v in acc.items()}, chunks=len(spans),
               first_chunk_done=min(e for _, e in spans) if spans else None,
               last_chunk_done=max(e for _, e in spans) if spans else None,
               map_sha=hashlib.sha256(labels.tobytes()).hexdigest()[:16],
               compute_wait=round(engine_stats.get("stats", {}).get("compute_wait_seconds", 0.0), 3),
               timeline=summary(timeline, wall), events=sorted(timeline, key=lambda e: e[2]))
    print("RESULT " + json.dumps(out), flush=True)


def summary(timeline, wall):
    """The timeline in a few figures: when the setup ended and the first read began, how busy the reading
    threads were (their reads' seconds over the span from the first read's start to the last's end), when
    the last read ended, and the computing after it."""
    reads = [e for e in timeline if e[0] == "read"]
    if not reads:
        return {}
    first, last = min(e[2] for e in reads), max(e[3] for e in reads)
    threads = {e[1] for e in reads}
    busy = sum(e[3] - e[2] for e in reads)
    after = [e for e in timeline if e[0] == "compute" and e[3] > last]
    setup = [e[2] for e in timeline if e[0] == "setup_done"]
    return dict(setup_done=setup[0] if setup else None, first_read_start=round(first, 3), last_read_end=round(last, 3),
                reading_threads_busy=round(busy / (len(threads) * (last - first)), 3),
                compute_after_last_read=round(sum(e[3] - max(e[2], last) for e in after), 3),
                tail=round(wall - last, 3))


def pinned_alloc_speed():
    import torch
    out = {}
    for mb in (52, 200):
        n = (mb << 20) // 4
        s = time.perf_counter()
        ts = [torch.empty(n, dtype=torch.float32, pin_memory=True) for _ in range(8)]
        out[f"pinned_{mb}MB_x8_s"] = round(time.perf_counter() - s, 3)
        del ts
        import numpy as np
        s = time.perf_counter()
        arrs = [np.ones(n, dtype=np.float32) for _ in range(8)]
        out[f"numpy_touch_{mb}MB_x8_s"] = round(time.perf_counter() - s, 3)
        s = time.perf_counter()
        for a in arrs:
            torch.from_numpy(a).to("cuda")
        torch.cuda.synchronize()
        out[f"h2d_pageable_{mb}MB_x8_s"] = round(time.perf_counter() - s, 3)
    return out


CASES = {  # name: (cfg, tuning)
    "default": ({}, {}),
    "default_again": ({}, {}),
    "threads8": ({}, {"read_threads": 8}),
    "threads32": ({}, {"read_threads": 32}),
    "gdal_default_decode": ({}, {"decode_threads": None}),
    "cpu_normalise": ({}, {"normalise_on_device": False}),  # run 8's path
    "zlevel6": ({}, {}, {"ZLEVEL": 6}),  # the map compressed at GDAL's DEFLATE level 6 (run 11's code)
    "switch": ({}, {}),  # Python's thread switch interval at 0.5 ms instead of 5 ms (run 13)
    "profile": ({}, {}),  # the default under torch.profiler: a chrome trace in TRACE_DIR (slower: compare nothing)
    # run 14 also timed the consumer waiting for 8 batches and two reads queued per thread (not kept); run 16:
    "open_in_threads": ({}, {}, {}, {"block_reader.OPEN_HANDLES_FIRST": False}),  # each reading thread opens its handle
    "batch1": ({"batch_size": 1}, {}),  # one tile per forward pass
    "tile512": ({"tile_size": 512}, {}),
}
BSQ_CASES = ("default", "default_again", "threads32", "cpu_normalise", "zlevel6", "switch", "profile",
             "open_in_threads")


def main_all(size, outjson, device, cases=None):
    import tempfile
    from cuda import bench_inference  # bench/inference.py's synthetic raster and random model
    b = bench_inference()
    work = tempfile.mkdtemp(prefix="diag_")
    model = os.path.join(work, "random.hsigan")
    b.save_model(b.make_net(), model)
    warm = os.path.join(work, "warm.tif")
    b.write_raster(warm, 256)
    results = dict(env=dict(cpus=os.cpu_count(), size=size), layouts=[])
    if device == "cuda" and os.environ.get("ALLOC"):
        sp = subprocess.run([sys.executable, __file__, "alloc"], capture_output=True, text=True)
        results["alloc"] = sp.stdout.strip()[-400:] + sp.stderr[-400:]
        print("alloc", results["alloc"], flush=True)
    for name, layout in b.LAYOUTS.items():
        path = os.path.join(work, "layout" + (".envi" if layout["driver"] == "ENVI" else ".tif"))
        s = time.perf_counter()
        b.write_raster(path, size, **layout)
        row = dict(layout=name, write_s=round(time.perf_counter() - s, 2), read_only=[], runs=[])
        for _ in range(2):
            row["read_only"].append(round(b.read_only_pass(path, os.cpu_count()), 3))
        print(name, "read-only", row["read_only"], flush=True)
        for case in (cases or CASES):
            if layout["driver"] == "ENVI" and case not in BSQ_CASES:
                continue
            cfg, tuning, *more = CASES[case]
            spec = dict(name=case, layout=name, device=device, warm=warm, model=model, path=path,
                        out=os.path.join(work, "map_" + case + ".tif"), cfg=cfg, tuning=tuning,
                        writer=more[0] if more else {}, engine=more[1] if len(more) > 1 else {})
            sp = subprocess.run([sys.executable, __file__, "one", json.dumps(spec)], capture_output=True, text=True)
            got = [l for l in sp.stdout.splitlines() if l.startswith("RESULT ")]
            r = json.loads(got[-1][7:]) if got else dict(case=case, error=(sp.stdout + sp.stderr)[-1500:])
            r["ratio"] = round(r["wall"] / statistics.median(row["read_only"]), 2) if "wall" in r else None
            row["runs"].append(r)
            print("  ", json.dumps({k: v for k, v in r.items() if k != "events"}), flush=True)
        for f in os.listdir(work):
            if f.startswith(("layout", "map_")):
                os.remove(os.path.join(work, f))
        results["layouts"].append(row)
        json.dump(results, open(outjson, "w"), indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "one":
        one(json.loads(sys.argv[2]))
    elif sys.argv[1] == "alloc":
        print(json.dumps(pinned_alloc_speed()))
    else:
        main_all(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "cuda",
                 sys.argv[5].split(",") if len(sys.argv) > 5 else None)
