"""hsigan:classify on a Dask cluster (DASK = tcp://host:port of a running scheduler, or local:N).

The raster is cut into chunks (TILE_SIZE px, or CHUNK px rounded to the file's blocks when TILE_SIZE is
0); each task names a chunk, the input and the model by path (plus the model file's SHA-256), so every
worker reads its chunks with its own GDAL handles and loads the model once (load_model's cache; a model
file changed under the same path is loaded again), and a task carries a few strings, not the weights.
Each chunk is read with the classifier's halo and computed exactly as on one machine (the same edge rule,
normalisation and tile arithmetic: predict.tile_results), so the map is the single-machine map.

The client keeps at most IN_FLIGHT_PER_WORKER chunks per worker submitted, writes each chunk's result as
it completes and drops it, so its memory is bounded by chunk size, not by the raster. A worker that dies
is replaced (by its nanny, or by the cluster manager) and Dask runs its chunks again elsewhere. Cancel
cancels every submitted chunk on the cluster. Dask is optional: only this module imports it.
"""
import hashlib
import itertools
import os
import threading
import time

import numpy as np

from .errors import InputError

CHUNK = 1024  # chunk side when TILE_SIZE is 0 (automatic)
IN_FLIGHT_PER_WORKER = 2
INSTALL = "python3 -m pip install 'dask[distributed]' (into the Python that runs HSI-GAN)"
_models, _models_lock = {}, threading.Lock()


def require_dask():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("DASK", f"running on a Dask cluster needs dask.distributed, which this Python cannot "
                                 f"import; install it with: {INSTALL}, or leave DASK empty") from None


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(model_path, digest, device_name):
    """(model, metadata, normalisation, class-id lookup, device) of a model file, loaded once per worker
    process and kept while its path and digest stay the same."""
    key = (os.path.abspath(model_path), digest, device_name)
    with _models_lock:
        if key not in _models:
            import torch

            from . import model_file
            from .device import choose
            from .predict import load_classifier, prepare_model
            from .sampling import Normalisation
            if file_digest(model_path) != digest:
                raise InputError("MODEL", f"'{model_path}' on this worker differs from the client's copy; "
                                          "give every machine the same file (a shared filesystem)")
            metadata, tensors = model_file.load(model_path)
            device = choose(device_name)
            model = prepare_model(load_classifier(metadata, tensors, device), device)
            norm = Normalisation(metadata["mean"], metadata["std"], [int(b) for b in metadata.get("bad_bands", [])])
            lookup = torch.as_tensor([int(i) for i in metadata["class_ids"]], device=device)
            _models.clear()  # one model per worker at a time
            _models[key] = (model, metadata, norm, lookup, device)
        return _models[key]


def classify_chunk(input_path, model_path, digest, device_name, window, tile, dtype, confidence, probabilities,
                   tta=False):
    """Worker side: (window, labels, confidence or None, probabilities or None) of one chunk, read with
    this worker's own handle and computed in tiles of `tile` px."""
    import torch

    from . import block_reader
    from .predict import halo, tile_results

    model, metadata, norm, lookup, device = load_model(model_path, digest, device_name)
    radius = halo(metadata)
    row, col, h, w = window
    plan = block_reader.Plan(h, w, tile)
    labels = np.empty((h, w), dtype=dtype)
    conf = np.empty((h, w), dtype=np.float32) if confidence else None
    prob = np.empty((len(metadata["class_ids"]), h, w), dtype=np.float32) if probabilities else None
    for (r, c, th, tw), data, valid in _read_chunk(input_path, window, plan, radius, norm):
        x = torch.from_numpy(np.ascontiguousarray(data))[None].to(device)
        v = torch.from_numpy(np.ascontiguousarray(valid))[None].to(device)
        (tile_labels, tile_conf, tile_prob), = tile_results(model, x, v, lookup, radius, dtype, confidence, probabilities,
                                                            tta)
        labels[r:r + th, c:c + tw] = tile_labels
        if confidence:
            conf[r:r + th, c:c + tw] = tile_conf
        if probabilities:
            prob[:, r:r + th, c:c + tw] = tile_prob
    return window, labels, conf, prob


def _read_chunk(input_path, window, plan, radius, norm):
    """Tiles of a chunk ((row, col, h, w) relative to the chunk, halo'd data, validity): the chunk is read
    once with its halo (read_window's edge rule), the tiles are views of it."""
    from .raster import open_raster, read_window
    row, col, h, w = window
    with open_raster(input_path) as dataset:
        data, valid = read_window(dataset, row, col, h, w, radius, skip_bands=norm.bad_bands)
    norm.apply(data, valid)
    for r in range(0, h, plan.strip_rows):
        for c in range(0, w, plan.tile_cols):
            th, tw = min(plan.strip_rows, h - r), min(plan.tile_cols, w - c)
            yield (r, c, th, tw), data[:, r:r + th + 2 * radius, c:c + tw + 2 * radius], \
                valid[r:r + th + 2 * radius, c:c + tw + 2 * radius]


def chunk_windows(height, width, block, tile_size):
    """(row, col, h, w) of the chunks: TILE_SIZE squares, or CHUNK rounded to the file's blocks."""
    if tile_size:
        rows = cols = tile_size
    else:
        rows = max(block[0], CHUNK // block[0] * block[0]) if block[0] < height else height
        cols = max(block[1], CHUNK // block[1] * block[1]) if block[1] < width else min(width, CHUNK)
    return [(r, c, min(rows, height - r), min(cols, width - c))
            for r in range(0, height, rows) for c in range(0, width, cols)]


def check_address(address):
    """Before any work: DASK is tcp://host:port or local:N, and dask.distributed can be imported."""
    address = address.strip()
    if address.startswith("local:"):
        count = address[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise InputError("DASK", f"'{address}' needs a number of workers; use local:N with N >= 1, e.g. local:4")
    elif "://" not in address:
        raise InputError("DASK", f"'{address}' is not a scheduler address; use tcp://host:8786 or local:N")
    require_dask()


def connect(address):
    """(client, cluster or None) for tcp://host:port (an existing scheduler) or local:N (a LocalCluster of N
    worker processes, closed with the client)."""
    check_address(address)
    from distributed import Client, LocalCluster
    address = address.strip()
    if address.startswith("local:"):
        _python_for_workers()
        cluster = LocalCluster(n_workers=int(address[len("local:"):]), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(address, timeout="20s"), None
    except (OSError, TimeoutError) as error:
        raise InputError("DASK", f"no Dask scheduler answers at {address} ({error}); start one with "
                                 "`dask scheduler` or use local:N") from None


def _python_for_workers():
    """Worker processes are started with sys.executable. Inside QGIS that is the QGIS binary, or whatever
    python3 the PATH finds first (another installation, another standard library), so point them at the
    interpreter beside the standard library QGIS embeds; they get this process's sys.path (the venv's
    packages) from multiprocessing."""
    import multiprocessing
    import shutil
    import sys
    if "qgis.core" not in sys.modules and os.path.basename(sys.executable).startswith("python"):
        return
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    stdlib = os.path.dirname(os.__file__)  # <prefix>/lib/pythonX.Y or <prefix>\Lib: the interpreter beside it
    prefix = os.path.dirname(os.path.dirname(stdlib)) if os.path.basename(stdlib) == version \
        else os.path.dirname(stdlib)
    for python in (os.path.join(prefix, "bin", version), os.path.join(prefix, "python.exe"),
                   os.path.join(prefix, "python3.exe"), shutil.which(version)):
        if python and os.path.isfile(python) and os.access(python, os.X_OK):
            multiprocessing.set_executable(python)
            return


def run(cfg, dataset, dtype, feedback, stats, write):
    """Classify cfg.input on the cluster at cfg.dask; write(window, labels, conf, prob) each chunk as it
    completes (in the order they complete)."""
    client, cluster = connect(cfg.dask)
    futures = []
    try:
        from distributed import as_completed
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        windows = chunk_windows(dataset.height, dataset.width, dataset.block_shapes[0], cfg.tile_size)
        digest = file_digest(cfg.model)
        tile = cfg.tile_size or 256
        args = (os.path.abspath(cfg.input), os.path.abspath(cfg.model), digest, cfg.device)
        feedback.info(f"Classifying on the Dask cluster at {cfg.dask} ({workers} workers): {len(windows)} chunks")
        started, done = time.perf_counter(), 0
        pending = iter(windows)

        def submit(n):
            new = [client.submit(classify_chunk, *args, window, tile, dtype, bool(cfg.output_confidence),
                                 bool(cfg.output_probabilities), cfg.tta, pure=False, retries=2)
                   for window in itertools.islice(pending, n)]
            futures.extend(new)
            return new

        queue = as_completed(submit(IN_FLIGHT_PER_WORKER * workers), with_results=False)
        for future in queue:
            feedback.check_cancel()
            window, labels, conf, prob = future.result()
            futures.remove(future)
            future.release()
            write(window, labels, conf, prob)
            done += 1
            feedback.progress(100.0 * done / len(windows))
            for following in submit(1):
                queue.add(following)
        stats["read_seconds"], stats["read_threads"] = 0.0, workers  # the reading happened on the workers
        feedback.info(f"{len(windows)} chunks classified on {workers} Dask workers in {time.perf_counter() - started:.1f} s")
    finally:
        if futures:  # cancelled or failed: stop the cluster's work on this job
            client.cancel(futures, force=True)
        client.close()
        if cluster is not None:
            cluster.close()
