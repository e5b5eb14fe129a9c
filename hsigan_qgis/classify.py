"""hsigan:classify — tiled, dense prediction of a whole raster.

Tiles and halo: the raster is read in the file's own block order by block_reader (strips of block rows,
left to right; every block decoded once, the halo rows and columns carried from one chunk to the next) and
cut into tiles of up to TILE_SIZE px (0 = automatic: about 256 on a CPU, 512 on a GPU, rounded to the
file's blocks). Each tile comes with a halo of r = PATCH_SIZE // 2 pixels on every side (plus half the
model's SMOOTHING box, which averages the class probabilities over it), the classifier runs fully
convolutionally on the (tile + 2r)^2 block (no copy of a patch per pixel: every unpadded 3x3 layer shrinks
the block by one pixel per side, so the output is exactly the tile), and the result is written to the
tile's window.

Edge rule: outside the raster the halo is filled by reflection about the edge pixel (numpy 'reflect':
the row at -1 is row 1, at -2 row 2), the same rule raster.read_window applies to training patches.
Hence every output pixel is the same function of the same PxP neighbourhood as in training, whatever the
tile size: tiled output equals one-piece output and equals the classifier on the patch centred on each
pixel (tests/test_classify.py checks all three).

Validity: a pixel is nodata in the outputs when any band the model uses is nodata, masked (mask band or
alpha) or not finite there; such pixels enter their neighbours' patches as 0 (the band mean), as in
training. Bad bands (nodata or constant over the training pixels, listed in the model's 'bad_bands') are
not judged and are set to 0 after normalisation, as in training.

Resources: reading threads (read_threads()) read, normalise and queue the next chunks while the current
tiles are computed; memory is at most block_reader.in_flight() chunks (each at most CHUNK_BYTES; together
at most IN_FLIGHT_BYTES, 512 MiB on CPU, on CUDA 4 GiB or a quarter of the GPU's free memory) plus 2r
full-width rows of carried halo plus GDAL's block cache, which is capped (CACHE_BYTES) while classify
runs, so it is bounded by tile size, not by raster size. One more thread computes each batch (on CUDA BATCH_SIZE tiles per forward pass, float32,
see dense_logits) and writes its results while this thread carries the halo of the next chunks. On CUDA
each reading thread sends its chunks to the GPU itself, as stored where the file allows (device_normalise:
the GPU judges and normalises them), and the halo is carried there, so no copy waits on this thread; the
chunks are read into ordinary, pageable memory: page-locking them cost more than it saved
(bench/RESULTS-cuda.md, runs 7 and 9).
"""
import collections
import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

from . import block_reader, model_file
from .config import ClassifyConfig, check
from .device import choose
from .errors import InputError
from .feedback import Feedback
from .outputs import check_job_files
from .predict import CLASS_NODATA, CONFIDENCE_NODATA, halo, load_classifier, prepare_model, tile_results
from .results import ClassifyResult
from .raster import band_wavelengths, open_raster
from .sampling import Normalisation
from .raster_writer import RasterWriter, driver_for, written_files as raster_files
from .styling import grey_qml, paletted_qml
from .write_check import gdal_errors

CACHE_BYTES = 512 << 20  # GDAL block cache while classifying


def class_dtype(max_id):
    for dtype in ("uint8", "uint16", "uint32"):
        if max_id <= np.iinfo(dtype).max:
            return dtype
    raise InputError("MODEL", f"class id {max_id} does not fit a 32-bit raster")


def read_threads(device_type, override=0):
    """Threads that read and normalise tiles ahead of the classifier. With the classifier on a GPU,
    reading (decompression, type conversion, validity, normalisation) is nearly all of classify's time,
    so on CUDA one thread per core (at most 16) reads at once (GDAL and numpy release the GIL; on an H100
    machine 16 threads classified a 2048^2 DEFLATE GeoTIFF in 1.60 s against 2.12 s with 8, run 8) and GDAL
    decodes blocks with all cores; on CPU one reading thread, as more only took cores from torch
    (bench/RESULTS-cuda.md).
    `override` (classify's read_threads, for benchmarks) replaces the count."""
    if override:
        return int(override)
    return max(1, min(16, os.cpu_count() or 1)) if device_type == "cuda" else 1




@contextlib.contextmanager
def _gdal_cache(limit):
    """Cap GDAL's block cache (default 5 % of RAM) while classify runs, so memory does not follow the
    raster; restored afterwards. Without GDAL's Python bindings (a rasterio-only install of the engine)
    the cache keeps GDAL's default size."""
    try:
        from osgeo import gdal
    except ImportError:
        yield
        return
    before = gdal.GetCacheMax()
    if before > limit:
        gdal.SetCacheMax(limit)
    try:
        yield
    finally:
        if before > limit:
            gdal.SetCacheMax(before)


def written_files(cfg):
    """[(parameter, path)] of every file classify writes, sidecars included."""
    files = []
    for parameter, path in (("OUTPUT", cfg.output), ("OUTPUT_CONFIDENCE", cfg.output_confidence),
                            ("OUTPUT_PROBABILITIES", cfg.output_probabilities)):
        if path:
            files += raster_files(path, parameter, styled=parameter != "OUTPUT_PROBABILITIES")
    return files


def classify(cfg: ClassifyConfig, feedback: Feedback = None, *, read_threads: int = 0,
             decode_threads: Optional[str] = "ALL_CPUS", normalise_on_device: bool = True) -> ClassifyResult:
    """Classify cfg.input with cfg.model into cfg.output (and the optional confidence and probabilities).
    For benchmarks, the same map whatever they are: read_threads (0 = read_threads() decides), decode_threads
    (GDAL_NUM_THREADS while reading for a CUDA run; None: GDAL's default), normalise_on_device (CUDA: chunks
    sent as stored and normalised on the GPU where the file allows, device_normalise; False: on the CPU)."""
    feedback = feedback or Feedback()
    check(cfg)  # bounds and choices from the config metadata
    if cfg.dask:
        from .dask_classify import check_address
        check_address(cfg.dask)
    outputs = [("OUTPUT", cfg.output)] + [(n, p) for n, p in (("OUTPUT_CONFIDENCE", cfg.output_confidence),
                                                               ("OUTPUT_PROBABILITIES", cfg.output_probabilities)) if p]
    for name, path in outputs:
        if cfg.cog and driver_for(path, name) != "GTiff":
            raise InputError("COG", f"a cloud-optimised GeoTIFF needs a .tif {name}, not '{path}'")
    if len({os.path.abspath(p) for _, p in outputs}) < len(outputs):
        raise InputError("OUTPUT", "two outputs have the same path; give each its own file")
    check_job_files(outputs, (cfg.input, cfg.model), written=written_files(cfg))
    metadata, tensors = model_file.load(cfg.model, modules=("classifier", "spectral_head"))
    started = time.perf_counter()
    stats = {}
    with _gdal_cache(CACHE_BYTES), open_raster(cfg.input) as dataset:
        if dataset.count != metadata["bands"]:
            raise InputError("INPUT", f"the raster has {dataset.count} bands but the model was trained on "
                                      f"{metadata['bands']}; use a raster with the same bands as the training one")
        model_file.check_wavelengths(metadata, band_wavelengths(dataset), feedback)
        device = choose(cfg.device, feedback)
        _classify(cfg, dataset, metadata, tensors, device, feedback, stats,
                  (read_threads, decode_threads, normalise_on_device))
    class_ids = [int(i) for i in metadata["class_ids"]]
    seconds = time.perf_counter() - started
    feedback.progress(100)
    feedback.info(f"Classification written to {cfg.output} in {seconds:.1f} s (reading: {stats['read_seconds']:.1f} s "
                  f"summed over {stats['read_threads']} threads, overlapped with computing)")
    return ClassifyResult(output=cfg.output, output_confidence=cfg.output_confidence or None,
                          output_probabilities=cfg.output_probabilities or None, seconds=seconds,
                          read_seconds=stats["read_seconds"], class_ids=class_ids, class_names=metadata["class_names"],
                          class_colours=metadata["class_colours"], device=device.type,
                          read_threads=stats["read_threads"])


def _check_scale(norm, data, valid, radius, feedback):
    """Warn when the first tile's values are on another scale than the training raster's (reflectance
    stored as 0-1 against 0-10000, say): the map would be wrong without any other sign. Judged on every
    4th row and column of the tile: the factor is a coarse check, and the whole tile cost 0.3 s on a GPU
    machine's critical path."""
    core = valid[radius:valid.shape[0] - radius:4, radius:valid.shape[1] - radius:4]
    sample = data[:, radius:data.shape[1] - radius:4, radius:data.shape[2] - radius:4]
    if not isinstance(sample, np.ndarray):  # a torch tensor on the GPU
        sample, core = sample.cpu().numpy(), core.cpu().numpy()
    factor = norm.scale_factor(sample, core)
    if factor is not None and not 0.2 <= factor <= 5:
        feedback.warning(f"INPUT: the raster's values are about {factor:.3g} times those the model was trained on "
                         "(first tile); it is probably on another scale (e.g. reflectance 0-1 against 0-10000), "
                         "so the map is likely wrong. Rescale the raster (Raster Calculator) to the training "
                         "raster's units, or train a model on rasters like this one")


def _classify(cfg, dataset, metadata, tensors, device, feedback, stats, tuning=(0, "ALL_CPUS", True)):
    import torch

    # on a Dask cluster the workers load the model; this process only writes what they return
    model = None if cfg.dask else prepare_model(load_classifier(metadata, tensors, device), device)
    radius = halo(metadata)  # the patch radius, plus half the smoothing box
    bad_bands = [int(b) for b in metadata.get("bad_bands", [])]  # in range: model_file.load checked them
    norm = Normalisation(metadata["mean"], metadata["std"], bad_bands)
    class_ids = np.asarray(metadata["class_ids"], dtype=np.int64)
    dtype = class_dtype(int(class_ids.max()))
    lookup = torch.as_tensor(class_ids, device=device)
    n_classes = len(class_ids)
    plan = block_reader.plan(dataset.height, dataset.width, dataset.block_shapes[0], dataset.count,
                             cfg.tile_size, device.type)
    n_tiles = block_reader.count_tiles(dataset.height, dataset.width, plan, radius)
    cuda = device.type == "cuda"
    if not cfg.dask:
        feedback.info(f"Classifying {dataset.width} x {dataset.height} pixels in {n_tiles} tiles of up to "
                      f"{plan.strip_rows} x {plan.tile_cols} px, read in {plan.strip_rows} x {plan.chunk_cols} px "
                      f"chunks in the file's block order (halo {radius} px, {cfg.batch_size if cuda else 1} per pass) on "
                      f"{device.type}" + (f"; {len(bad_bands)} bad bands set to 0" if bad_bands else "")
                      + ("; probabilities averaged over the 8 flips/rotations (TTA)" if cfg.tta else ""))
    batch_size = cfg.batch_size if cuda else 1  # on CPU batching tiles only costs memory
    with contextlib.ExitStack() as stack:
        if cuda:  # float32 means float32 (no TF32); cuDNN's heuristics, not benchmarking: the edge tiles
            # have other shapes, each would be benchmarked again, and computing is ~1 % of the time anyway
            cudnn = torch.backends.cudnn
            stack.callback(setattr, cudnn, "benchmark", cudnn.benchmark)
            stack.callback(setattr, cudnn, "allow_tf32", cudnn.allow_tf32)
            cudnn.benchmark, cudnn.allow_tf32 = False, False
        messages = stack.enter_context(gdal_errors())  # reported by Fingerprints.verify if a file is bad
        inputs = (cfg.input, cfg.model)
        class_map = RasterWriter(stack, cfg.output, "OUTPUT", dataset, dtype, 1, CLASS_NODATA, inputs, messages, cfg.cog)
        confidence = probabilities = None
        if cfg.output_confidence:
            confidence = RasterWriter(stack, cfg.output_confidence, "OUTPUT_CONFIDENCE", dataset, "float32", 1,
                                      CONFIDENCE_NODATA, inputs, messages, cfg.cog)
        if cfg.output_probabilities:
            probabilities = RasterWriter(stack, cfg.output_probabilities, "OUTPUT_PROBABILITIES", dataset, "float32",
                                         n_classes, CONFIDENCE_NODATA, inputs, messages, cfg.cog)
        done = 0
        pending = []

        def write(window, labels, conf, prob):
            """One tile's or chunk's results into the outputs, window (row, col, h, w)."""
            class_map.write(labels, window)
            if confidence:
                confidence.write(conf, window)
            if probabilities:
                probabilities.write(prob, window)

        def compute(batch):
            """Classify a batch of tiles of one shape and write their results."""
            if cuda:  # one forward pass for the batch; the reading threads copied the chunks to the GPU
                x, valid = torch.stack([data for _, data, _ in batch]), torch.stack([v for _, _, v in batch])
            else:  # CPU: one tile per pass, no copy
                x, valid = torch.from_numpy(batch[0][1])[None], torch.from_numpy(batch[0][2])[None]
            results = tile_results(model, x, valid, lookup, radius, dtype, bool(confidence), bool(probabilities),
                                   cfg.tta)
            for ((row, col, h, w), _, _), (labels, conf, prob) in zip(batch, results):
                write((row, col, h, w), labels, conf, prob)
            return len(batch)

        # batches are computed and written by one more thread, in order, while this one carries the halo
        # of the next chunks; at most one batch waits
        computer = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="hsigan-compute"))
        computing = collections.deque()

        def flush(keep=0):
            nonlocal done
            if pending:
                computing.append(computer.submit(compute, list(pending)))
                pending.clear()
            while len(computing) > keep:
                waited = time.perf_counter()
                done += computing.popleft().result()
                stats["compute_wait_seconds"] = stats.get("compute_wait_seconds", 0.0) + time.perf_counter() - waited
                feedback.progress(100.0 * done / n_tiles)

        if cfg.dask:  # chunks computed on the cluster, written here as they complete
            from . import dask_classify
            dask_classify.run(cfg, dataset, dtype, feedback, stats, write)
        threads_asked, decode_threads, normalise_on_device = tuning
        threads = read_threads(device.type, threads_asked)
        stats.setdefault("read_threads", threads)
        try:
            for item in [] if cfg.dask else block_reader.read_tiles(
                    cfg.input, dataset.height, dataset.width, plan, radius, norm, stats, threads,
                    block_reader.in_flight(plan, dataset.count, threads, device.type,
                                           torch.cuda.mem_get_info(device)[0] if cuda else None),
                    gdal_threads=decode_threads if cuda else None, device=device if cuda else None,
                    normalise_on_device=normalise_on_device):
                feedback.check_cancel()
                if not done and not pending and not computing:
                    _check_scale(norm, item[1], item[2], radius, feedback)
                if pending and (item[1].shape != pending[0][1].shape or len(pending) >= batch_size):
                    flush(keep=1)
                pending.append(item)
            flush()
        finally:  # failed or cancelled: the batch being computed finishes, the one waiting is dropped
            for waiting in computing:
                waiting.cancel()
        feedback.check_cancel()
        ids, names, colours = [int(i) for i in class_ids], metadata["class_names"], metadata["class_colours"]
        class_map.finish(paletted_qml(ids, names, colours), classes=(ids, names, colours), feedback=feedback,
                         tags=dict(HSIGAN_MODEL=os.path.basename(cfg.model),
                                   HSIGAN_CLASSES=";".join(f"{i}={n}" for i, n in zip(ids, names))))
        if confidence:
            confidence.finish(grey_qml())
        if probabilities:
            probabilities.finish()
        # leaving the with-block moves each verified set beside its target
