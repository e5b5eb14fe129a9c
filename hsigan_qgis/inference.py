"""hsigan:classify — tiled, dense prediction of a whole raster.

Tiles and halo: the raster is read in the file's own block order by block_reader (strips of block rows,
left to right; every block decoded once, the halo rows and columns carried from one chunk to the next) and
cut into tiles of up to TILE_SIZE px (0 = automatic: about 256 on a CPU, 512 on a GPU, rounded to the
file's blocks). Each tile comes with a halo of r = PATCH_SIZE // 2 pixels on every side, the classifier
runs fully convolutionally on the (tile + 2r)^2 block (no copy of a patch per pixel: every unpadded 3x3
layer shrinks the block by one pixel per side, so the output is exactly the tile), and the result is
written to the tile's window.

Edge rule: outside the raster the halo is filled by reflection about the edge pixel (numpy 'reflect':
the row at -1 is row 1, at -2 row 2), the same rule raster.read_window applies to training patches.
Hence every output pixel is the same function of the same PxP neighbourhood as in training, whatever the
tile size: tiled output equals one-piece output and equals the classifier on the patch centred on each
pixel (tests/test_inference.py checks all three).

Validity: a pixel is nodata in the outputs when any band the model uses is nodata, masked (mask band or
alpha) or not finite there; such pixels enter their neighbours' patches as 0 (the band mean), as in
training. Bad bands (nodata or constant over the training pixels, listed in the model's 'bad_bands') are
not judged and are set to 0 after normalisation, as in training.

Resources: reading threads (read_threads()) read, normalise and queue the next chunks while the current
tiles are computed; memory is at most block_reader.in_flight() chunks (each at most CHUNK_BYTES; together
at most IN_FLIGHT_BYTES, 512 MiB on CPU, 4 GiB of page-locked memory on CUDA) plus 2r full-width
rows of carried halo plus GDAL's block cache, which is capped (CACHE_BYTES) while classify runs, so it is
bounded by tile size, not by raster size. On CUDA: pinned host memory, non-blocking copies, BATCH_SIZE
tiles per forward pass, float32 (see dense_logits).
"""
import contextlib
import os
import time

import numpy as np

from . import block_reader, model_file
from .config import ClassifyConfig, check
from .device import choose
from .errors import InputError, one_line
from .feedback import Feedback
from .outputs import atomic_path, check_output, disk_full_error
from .replaceable import check_replaceable
from .raster import band_wavelengths, open_raster
from .sampling import Normalisation
from .styling import grey_qml, hex_to_rgba, paletted_qml, qml_path, read_class_table, write_class_table
from .tta import dihedral_probabilities
from .write_check import Fingerprints, gdal_errors

CLASS_NODATA = 0
CONFIDENCE_NODATA = -1.0
CACHE_BYTES = 512 << 20  # GDAL block cache while classifying


def load_classifier(metadata, tensors, device):
    import torch
    from models.classifier import SpectralSpatialNet

    arch = metadata["architecture"]
    state = {name: torch.from_numpy(np.array(array)) for name, array in tensors["classifier"].items()}
    try:  # the file is untrusted: tensors of any shape must end as a clear error
        widths = {}  # layer widths as stored (models from other settings load too)
        if state.get("head.weight") is not None and state.get("spectral.0.weight") is not None:
            widths = dict(width=state["head.weight"].shape[1], spectral_width=state["spectral.0.weight"].shape[0])
        model = SpectralSpatialNet(arch["bands"], arch["classes"], arch["patch_size"], **widths)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise InputError("MODEL", f"the weights do not fit the architecture in its metadata ({one_line(error)}); "
                                  "train the model again or copy it anew")
    return model.to(device).eval()


def class_dtype(max_id):
    for dtype in ("uint8", "uint16", "uint32"):
        if max_id <= np.iinfo(dtype).max:
            return dtype
    raise InputError("MODEL", f"class id {max_id} does not fit a 32-bit raster")


# Formats whose output (one file or several) is tested to read back what was written; a multi-file set
# (.ers + data file, .mrf + .idx + data) is written in a temporary folder under its final names and
# moved together. Others (.vrt, .nc, ...) are refused before any work.
FORMATS = {"tif": ("GTiff", "GeoTIFF"), "tiff": ("GTiff", "GeoTIFF"), "img": ("HFA", "Erdas Imagine"),
           "ers": ("ERS", "ER Mapper"), "mrf": ("MRF", "Meta Raster Format"), "pix": ("PCIDSK", "PCI")}


EXTRA_FILES = {"ERS": ("",), "MRF": (".idx", ".pzp")}  # files a driver writes beside the named one


def driver_for(path, parameter="OUTPUT"):
    """GDAL driver that writes files with this extension (GTiff without one); InputError for a format
    HSI-GAN does not write."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        return "GTiff"
    if ext not in FORMATS:
        known = ", ".join(f".{e} ({n})" for e, (_, n) in FORMATS.items() if e != "tiff")
        raise InputError(parameter, f"HSI-GAN does not write '.{ext}' rasters; use one of {known}")
    return FORMATS[ext][0]


def read_threads(device_type):
    """Threads that read and normalise tiles ahead of the classifier. With the classifier on a GPU,
    reading (decompression, type conversion, validity, normalisation) is nearly all of classify's time,
    so on CUDA one thread per core (at most 16) reads at once (GDAL and numpy release the GIL; on an H100
    machine 16 threads classified a 2048^2 DEFLATE GeoTIFF in 2.1-2.9 s against 3.1-3.8 s with 8) and GDAL
    decodes blocks with all cores; on CPU one reading thread, as more only took cores from torch
    (bench/RESULTS-cuda.md).
    READ_THREADS overrides the count (benchmarks)."""
    if READ_THREADS:
        return int(READ_THREADS)
    return max(1, min(16, os.cpu_count() or 1)) if device_type == "cuda" else 1


READ_THREADS = 0  # 0 = read_threads() decides
CUDA_DECODE_THREADS = "ALL_CPUS"  # GDAL_NUM_THREADS while reading for a CUDA run (None: GDAL's default)
PINNED = True  # on CUDA, read chunks into page-locked memory (False: pageable; benchmarks)


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


def prepare_model(model, device):
    """Model ready for dense inference: eval mode, each batch norm folded into the convolution before it
    (one pass over the activations less; the same function up to float rounding) and channels-last
    memory (faster convolutions on CPU and GPU)."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = model.to(device).eval()
    for sequence in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        layers, folded = list(sequence), []
        for layer in layers:
            if isinstance(layer, torch.nn.BatchNorm2d) and folded and isinstance(folded[-1], torch.nn.Conv2d):
                folded[-1] = fuse_conv_bn_eval(folded[-1], layer)
            else:
                folded.append(layer)
        if len(folded) < len(layers):
            sequence._modules.clear()
            for k, layer in enumerate(folded):
                sequence.add_module(str(k), layer)
    return model.to(memory_format=torch.channels_last)


def tile_results(model, x, valid, lookup, radius, dtype, confidence, probabilities, tta=False):
    """[(labels, confidence or None, probabilities or None)] as numpy for each tile of a normalised, halo'd
    batch x (N, bands, h + 2r, w + 2r) with validity (N, h + 2r, w + 2r): class ids (CLASS_NODATA where
    invalid), winning probability and per-class probabilities (CONFIDENCE_NODATA where invalid). tta: the
    probabilities averaged over the 8 flips/rotations (hsigan_qgis/tta.py)."""
    import torch
    if tta:
        scores = probs = dihedral_probabilities(model, x)
    else:
        scores = dense_logits(model, x)
        probs = torch.softmax(scores, 1) if (confidence or probabilities) else None
    core = valid[:, radius:valid.shape[1] - radius, radius:valid.shape[2] - radius]
    labels = lookup[scores.argmax(1)].masked_fill_(~core, CLASS_NODATA).cpu().numpy().astype(dtype)
    results = []
    for i in range(len(labels)):
        conf = prob = None
        if confidence:
            conf = probs[i].max(0).values.masked_fill_(~core[i], CONFIDENCE_NODATA).cpu().numpy()
        if probabilities:
            prob = probs[i].masked_fill_(~core[i][None], CONFIDENCE_NODATA).cpu().numpy()
        results.append((labels[i], conf, prob))
    return results


def _pinned(shape):
    """float32 host array in page-locked memory (torch's caching host allocator reuses it), so the copy
    to the GPU is asynchronous and needs no staging copy."""
    import torch
    return torch.empty(shape, dtype=torch.float32, pin_memory=True).numpy()


def dense_logits(model, x):
    """(N, classes, H-2r, W-2r) float32 logits of a normalised (N, bands, H, W) batch. Float32 throughout:
    on an H200 float16 autocast computed only 1.2x faster than float32 while reading the raster took
    >99 % of a classification, and it flipped labels near class boundaries (bench/RESULTS-cuda.md)."""
    import torch
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return model(x)


def _profile(dataset, driver, dtype, count, nodata, tile):
    profile = dict(driver=driver, width=dataset.width, height=dataset.height, count=count, dtype=dtype,
                   crs=dataset.crs, transform=dataset.transform, nodata=nodata)
    if driver == "GTiff":
        block = 256 if min(dataset.width, dataset.height) >= 256 else 16 * max(1, min(dataset.width, dataset.height) // 16)
        profile.update(tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                       interleave="band", BIGTIFF="IF_SAFER")
    elif driver == "MRF":  # its default (PNG) holds no float32
        profile.update(compress="DEFLATE")
    return profile


def _to_cog(temporary, prints, parameter, final):
    """Converts the finished temporary GeoTIFF to a cloud-optimised one in place (through a sub-folder, so
    the file keeps its name), verified against the original pixel by pixel."""
    from osgeo import gdal
    folder = os.path.join(os.path.dirname(temporary), "cog")
    os.mkdir(folder)
    converted = os.path.join(folder, os.path.basename(temporary))
    result = gdal.Translate(converted, temporary, format="COG", creationOptions=["COMPRESS=DEFLATE"])
    if result is None:
        raise InputError("COG", "GDAL could not write a cloud-optimised GeoTIFF here")
    result = None
    prints.verify(converted)
    for name in os.listdir(folder):
        os.replace(os.path.join(folder, name), os.path.join(os.path.dirname(temporary), name))
    os.rmdir(folder)


def written_files(cfg):
    """[(parameter, path)] of every file classify writes, sidecars included."""
    files = []
    for parameter, path in (("OUTPUT", cfg.output), ("OUTPUT_CONFIDENCE", cfg.output_confidence),
                            ("OUTPUT_PROBABILITIES", cfg.output_probabilities)):
        if path:
            files += [(parameter, path), (parameter, path + ".aux.xml")]
            stem = os.path.splitext(path)[0]
            files += [(parameter, stem + e) for e in EXTRA_FILES.get(driver_for(path, parameter), ())]
            if parameter != "OUTPUT_PROBABILITIES":
                files.append((parameter, qml_path(path)))
    return files


def classify(cfg: ClassifyConfig, feedback: Feedback = None) -> dict:
    from .input_files import check_outputs

    feedback = feedback or Feedback()
    check(cfg)  # bounds and choices from the config metadata
    if cfg.dask:
        from .dask_classify import check_address
        check_address(cfg.dask)
    outputs = [("OUTPUT", cfg.output)] + [(n, p) for n, p in (("OUTPUT_CONFIDENCE", cfg.output_confidence),
                                                               ("OUTPUT_PROBABILITIES", cfg.output_probabilities)) if p]
    for name, path in outputs:
        check_output(path, name, inputs=(cfg.input, cfg.model))
        check_replaceable(path, name)
        if cfg.cog and driver_for(path, name) != "GTiff":
            raise InputError("COG", f"a cloud-optimised GeoTIFF needs a .tif {name}, not '{path}'")
    if len({os.path.abspath(p) for _, p in outputs}) < len(outputs):
        raise InputError("OUTPUT", "two outputs have the same path; give each its own file")
    check_outputs(written_files(cfg), (cfg.input, cfg.model))
    metadata, tensors = model_file.load(cfg.model, modules=("classifier",))
    started = time.perf_counter()
    stats = {}
    with _gdal_cache(CACHE_BYTES), open_raster(cfg.input) as dataset:
        if dataset.count != metadata["bands"]:
            raise InputError("INPUT", f"the raster has {dataset.count} bands but the model was trained on "
                                      f"{metadata['bands']}; use a raster with the same bands as the training one")
        model_file.check_wavelengths(metadata, band_wavelengths(dataset), feedback)
        device = choose(cfg.device, feedback)
        _classify(cfg, dataset, metadata, tensors, device, feedback, stats)
    class_ids = [int(i) for i in metadata["class_ids"]]
    seconds = time.perf_counter() - started
    feedback.progress(100)
    feedback.info(f"Classification written to {cfg.output} in {seconds:.1f} s (reading: {stats['read_seconds']:.1f} s "
                  f"summed over {stats['read_threads']} threads, overlapped with computing)")
    return dict(output=cfg.output, output_confidence=cfg.output_confidence or None,
                output_probabilities=cfg.output_probabilities or None, seconds=seconds,
                read_seconds=stats["read_seconds"], class_ids=class_ids, class_names=metadata["class_names"],
                class_colours=metadata["class_colours"], device=device.type, read_threads=stats["read_threads"])


def _finish(cfg, parameter, final, temporary, dst, prints, shape, qml):
    """Close, verify and complete one output inside its temporary folder: COG conversion, .qml style.
    A full disk ends as an InputError naming `parameter`; nothing has replaced the old output yet."""
    from .outputs import disk_full_error, is_disk_full
    dst.close()
    if shape is not None:  # the class map was verified before its attribute table was added
        prints.verify(temporary, shape, dst.dtypes[0])
    try:
        if cfg.cog:
            _to_cog(temporary, prints, parameter, final)
        if qml:
            with open(os.path.join(os.path.dirname(temporary), os.path.basename(qml_path(final))), "w",
                      encoding="utf-8") as stream:
                stream.write(qml)
    except OSError as error:
        if is_disk_full(error):
            raise disk_full_error(final, parameter, error.strerror) from None
        raise


def _check_scale(norm, data, valid, radius, feedback):
    """Warn when the first tile's values are on another scale than the training raster's (reflectance
    stored as 0-1 against 0-10000, say): the map would be wrong without any other sign."""
    core = valid[radius:valid.shape[0] - radius, radius:valid.shape[1] - radius]
    factor = norm.scale_factor(data[:, radius:data.shape[1] - radius, radius:data.shape[2] - radius], core)
    if factor is not None and not 0.2 <= factor <= 5:
        feedback.warning(f"INPUT: the raster's values are about {factor:.3g} times those the model was trained on "
                         "(first tile); it is probably on another scale (e.g. reflectance 0-1 against 0-10000), "
                         "so the map is likely wrong. Rescale the raster (Raster Calculator) to the training "
                         "raster's units, or train a model on rasters like this one")


def _classify(cfg, dataset, metadata, tensors, device, feedback, stats):
    import rasterio
    import torch
    from rasterio.windows import Window

    model = prepare_model(load_classifier(metadata, tensors, device), device)
    radius = metadata["patch_size"] // 2
    bad_bands = [int(b) for b in metadata.get("bad_bands", [])]
    if any(not 0 <= b < metadata["bands"] for b in bad_bands):
        raise InputError("MODEL", f"the model's bad_bands {bad_bands} do not fit its {metadata['bands']} bands")
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
        class_tmp = stack.enter_context(atomic_path(cfg.output, "OUTPUT", inputs))
        dst = stack.enter_context(rasterio.open(class_tmp, "w", **_profile(
            dataset, driver_for(cfg.output), dtype, 1, CLASS_NODATA, cfg.tile_size)))
        class_prints = Fingerprints(cfg.output, "OUTPUT", messages)
        conf_dst = prob_dst = None
        if cfg.output_confidence:
            conf_tmp = stack.enter_context(atomic_path(cfg.output_confidence, "OUTPUT_CONFIDENCE", inputs))
            conf_dst = stack.enter_context(rasterio.open(conf_tmp, "w", **_profile(
                dataset, driver_for(cfg.output_confidence), "float32", 1, CONFIDENCE_NODATA, cfg.tile_size)))
            conf_prints = Fingerprints(cfg.output_confidence, "OUTPUT_CONFIDENCE", messages)
        if cfg.output_probabilities:
            prob_tmp = stack.enter_context(atomic_path(cfg.output_probabilities, "OUTPUT_PROBABILITIES", inputs))
            prob_dst = stack.enter_context(rasterio.open(prob_tmp, "w", **_profile(
                dataset, driver_for(cfg.output_probabilities), "float32", n_classes, CONFIDENCE_NODATA,
                cfg.tile_size)))
            prob_prints = Fingerprints(cfg.output_probabilities, "OUTPUT_PROBABILITIES", messages)
        done = 0
        pending = []

        def write(window, labels, conf, prob):
            """One tile's results into the outputs, each window fingerprinted for the read-back check."""
            row, col, h, w = window
            window = Window(col, row, w, h)
            dst.write(labels, 1, window=window)
            class_prints.record(labels, col, row, w, h)
            if conf_dst:
                conf_dst.write(conf, 1, window=window)
                conf_prints.record(conf, col, row, w, h)
            if prob_dst:
                prob_dst.write(prob, window=window)
                prob_prints.record(prob, col, row, w, h)

        def flush():
            nonlocal done
            if cuda:  # the chunks were read into pinned memory: asynchronous copies, batched on the GPU
                x = torch.stack([torch.from_numpy(np.ascontiguousarray(data)).to(device, non_blocking=True)
                                 for _, data, _ in pending])
                valid = torch.stack([torch.from_numpy(v) for _, _, v in pending]).to(device, non_blocking=True)
            else:  # CPU: one tile per pass, no copy
                x, valid = torch.from_numpy(pending[0][1])[None], torch.from_numpy(pending[0][2])[None]
            results = tile_results(model, x, valid, lookup, radius, dtype, bool(conf_dst), bool(prob_dst),
                                   cfg.tta)
            for ((row, col, h, w), _, _), (labels, conf, prob) in zip(pending, results):
                write((row, col, h, w), labels, conf, prob)
            done += len(pending)
            pending.clear()
            feedback.progress(100.0 * done / n_tiles)

        if cfg.dask:  # chunks computed on the cluster, written here as they complete
            from . import dask_classify
            dask_classify.run(cfg, dataset, dtype, feedback, stats, write)
        threads = read_threads(device.type)
        stats.setdefault("read_threads", threads)
        for item in [] if cfg.dask else block_reader.read_tiles(cfg.input, dataset.height, dataset.width, plan, radius, norm, stats,
                                            threads, block_reader.in_flight(plan, dataset.count, threads, device.type),
                                            gdal_threads=CUDA_DECODE_THREADS if cuda else None,
                                            allocate=_pinned if cuda and PINNED else None):
            feedback.check_cancel()
            if not done and not pending:
                _check_scale(norm, item[1], item[2], radius, feedback)
            if pending and (item[1].shape != pending[0][1].shape or len(pending) >= batch_size):
                flush()
            pending.append(item)
        if pending:
            flush()
        feedback.check_cancel()
        colormap = {int(cid): hex_to_rgba(c) for cid, c in zip(class_ids, metadata["class_colours"])}
        if dtype in ("uint8", "uint16"):
            try:
                dst.write_colormap(1, colormap)
            except Exception as error:  # a format without colour tables still gets the .qml
                feedback.warning(f"{dst.driver} could not store the colour table ({error}); the .qml has it")
        dst.update_tags(HSIGAN_MODEL=os.path.basename(cfg.model),
                        HSIGAN_CLASSES=";".join(f"{i}={n}" for i, n in zip(class_ids, metadata["class_names"])))
        dst.close()
        class_prints.verify(class_tmp, (1, dataset.height, dataset.width), dtype)
        names = [str(n) for n in metadata["class_names"]]
        if not write_class_table(class_tmp, [int(i) for i in class_ids], names, metadata["class_colours"]):
            feedback.info("No raster attribute table written (GDAL's Python bindings are missing here or cannot "
                          "update this format); the colour table and the .qml carry the classes")
        elif read_class_table(class_tmp) != dict(zip((int(i) for i in class_ids), names)):
            raise disk_full_error(cfg.output, "OUTPUT", "the class names could not be stored")
        _finish(cfg, "OUTPUT", cfg.output, class_tmp, dst, class_prints, None,
                paletted_qml([int(i) for i in class_ids], metadata["class_names"], metadata["class_colours"]))
        if conf_dst:
            _finish(cfg, "OUTPUT_CONFIDENCE", cfg.output_confidence, conf_tmp, conf_dst, conf_prints,
                    (1, dataset.height, dataset.width), grey_qml())
        if prob_dst:
            _finish(cfg, "OUTPUT_PROBABILITIES", cfg.output_probabilities, prob_tmp, prob_dst, prob_prints,
                    (n_classes, dataset.height, dataset.width), None)
        # leaving the with-block moves each verified set beside its target
