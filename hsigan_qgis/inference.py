"""hsigan:classify — tiled, dense prediction of a whole raster.

Each tile is read with a halo of the model's radius (reflected at the raster's edges, as the training
patches were), the classifier runs fully convolutionally on it, and the (halo-free) result is written to
the tile's window. Every output pixel is thus the same function of the same PxP neighbourhood as in
training, whatever the tile size: tiled output equals one-piece output. A background thread reads the
next tiles while the current ones are computed. Memory: a few tiles x bands x (tile+2*radius)^2 floats.
"""
import os
import queue
import threading
import time

import numpy as np

from . import model_file
from .config import ClassifyConfig
from .device import choose
from .errors import InputError
from .feedback import Feedback
from .outputs import atomic_path, check_output, write_text
from .raster import open_raster, read_window
from .styling import grey_qml, hex_to_rgba, paletted_qml, qml_path, write_class_table

CLASS_NODATA = 0
CONFIDENCE_NODATA = -1.0


def load_classifier(metadata, tensors, device):
    import torch
    from models.classifier import SpectralSpatialNet

    arch = metadata["architecture"]
    model = SpectralSpatialNet(arch["bands"], arch["classes"], arch["patch_size"])
    state = {name: torch.from_numpy(np.array(array)) for name, array in tensors["classifier"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise InputError("MODEL", f"the weights do not fit the architecture in its metadata ({str(error)[:200]})")
    return model.to(device).eval()


def class_dtype(max_id):
    for dtype in ("uint8", "uint16", "uint32"):
        if max_id <= np.iinfo(dtype).max:
            return dtype
    raise InputError("MODEL", f"class id {max_id} does not fit a 32-bit raster")


def driver_for(path):
    """GDAL driver that writes files with this extension (GTiff when unknown)."""
    from osgeo import gdal
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext in ("tif", "tiff", ""):
        return "GTiff"
    for i in range(gdal.GetDriverCount()):
        driver = gdal.GetDriver(i)
        meta = driver.GetMetadata()
        if meta.get("DCAP_RASTER") == "YES" and ext in (meta.get("DMD_EXTENSIONS") or "").split() \
                and (meta.get("DCAP_CREATE") == "YES"):
            return driver.ShortName
    raise InputError("OUTPUT", f"no GDAL driver creates '.{ext}' rasters; use .tif (GeoTIFF) or another format")


def tiles(height, width, size):
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield row, col, min(size, height - row), min(size, width - col)


def _prefetch(dataset, windows, halo, depth=2):
    """Iterate (window, data, valid) with reading done ahead in a thread (GDAL I/O releases the GIL)."""
    box, stop = queue.Queue(maxsize=depth), threading.Event()

    def work():
        try:
            for row, col, h, w in windows:
                if stop.is_set():
                    return
                box.put(((row, col, h, w),) + read_window(dataset, row, col, h, w, halo))
            box.put(None)
        except BaseException as error:  # surfaced in the consumer
            box.put(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def _profile(dataset, driver, dtype, count, nodata, tile):
    profile = dict(driver=driver, width=dataset.width, height=dataset.height, count=count, dtype=dtype,
                   crs=dataset.crs, transform=dataset.transform, nodata=nodata)
    if driver == "GTiff":
        block = 256 if min(dataset.width, dataset.height) >= 256 else 16 * max(1, min(dataset.width, dataset.height) // 16)
        profile.update(tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                       interleave="band", BIGTIFF="IF_SAFER")
    return profile


def _to_cog(path):
    from osgeo import gdal
    with atomic_path(path) as temporary:
        result = gdal.Translate(temporary, path, format="COG", creationOptions=["COMPRESS=DEFLATE"])
        if result is None:
            raise InputError("COG", "GDAL could not write a cloud-optimised GeoTIFF here")
        result = None


def classify(cfg: ClassifyConfig, feedback: Feedback = None) -> dict:
    import contextlib

    import rasterio
    import torch
    from rasterio.windows import Window

    feedback = feedback or Feedback()
    if cfg.tile_size < 16:
        raise InputError("TILE_SIZE", f"{cfg.tile_size} is too small; use 16 or more (256 is typical)")
    if cfg.batch_size < 1:
        raise InputError("BATCH_SIZE", f"{cfg.batch_size} must be at least 1")
    outputs = [("OUTPUT", cfg.output)] + [(n, p) for n, p in (("OUTPUT_CONFIDENCE", cfg.output_confidence),
                                                               ("OUTPUT_PROBABILITIES", cfg.output_probabilities)) if p]
    for name, path in outputs:
        check_output(path, name, inputs=(cfg.input, cfg.model))
    if len({os.path.abspath(p) for _, p in outputs}) < len(outputs):
        raise InputError("OUTPUT", "two outputs have the same path; give each its own file")
    metadata, tensors = model_file.load(cfg.model)
    started = time.perf_counter()
    with open_raster(cfg.input) as dataset:
        if dataset.count != metadata["bands"]:
            raise InputError("INPUT", f"the raster has {dataset.count} bands but the model was trained on "
                                      f"{metadata['bands']}; use a raster with the same bands as the training one")
        device = choose(cfg.device, feedback)
        model = load_classifier(metadata, tensors, device)
        radius = metadata["patch_size"] // 2
        class_ids = np.asarray(metadata["class_ids"], dtype=np.int64)
        dtype = class_dtype(int(class_ids.max()))
        mean = torch.as_tensor(metadata["mean"], dtype=torch.float32, device=device)[:, None, None]
        std = torch.as_tensor(metadata["std"], dtype=torch.float32, device=device)[:, None, None]
        lookup = torch.as_tensor(class_ids, device=device)
        n_classes = len(class_ids)
        windows = list(tiles(dataset.height, dataset.width, cfg.tile_size))
        feedback.info(f"Classifying {dataset.width} x {dataset.height} pixels in {len(windows)} tiles of "
                      f"{cfg.tile_size} px (halo {radius} px) on {device.type}")
        with contextlib.ExitStack() as stack:
            class_tmp = stack.enter_context(atomic_path(cfg.output))
            dst = stack.enter_context(rasterio.open(class_tmp, "w", **_profile(
                dataset, driver_for(cfg.output), dtype, 1, CLASS_NODATA, cfg.tile_size)))
            conf_dst = prob_dst = None
            if cfg.output_confidence:
                conf_tmp = stack.enter_context(atomic_path(cfg.output_confidence))
                conf_dst = stack.enter_context(rasterio.open(conf_tmp, "w", **_profile(
                    dataset, driver_for(cfg.output_confidence), "float32", 1, CONFIDENCE_NODATA, cfg.tile_size)))
            if cfg.output_probabilities:
                prob_tmp = stack.enter_context(atomic_path(cfg.output_probabilities))
                prob_dst = stack.enter_context(rasterio.open(prob_tmp, "w", **_profile(
                    dataset, driver_for(cfg.output_probabilities), "float32", n_classes, CONFIDENCE_NODATA,
                    cfg.tile_size)))
            use_amp = device.type == "cuda"
            done = 0
            pending = []

            def flush():
                nonlocal done
                x = torch.stack([torch.from_numpy(d) for _, d, _ in pending])
                if device.type == "cuda":
                    x = x.pin_memory().to(device, non_blocking=True)
                x = (x - mean) / std
                valid = torch.stack([torch.from_numpy(v) for _, _, v in pending]).to(device)
                x = x.masked_fill(~valid[:, None], 0.0)
                with torch.no_grad(), torch.autocast(device.type, enabled=use_amp):
                    logits = model(x).float()
                core = valid[:, radius:valid.shape[1] - radius, radius:valid.shape[2] - radius]
                labels = lookup[logits.argmax(1)].masked_fill(~core, CLASS_NODATA).cpu().numpy().astype(dtype)
                probs = torch.softmax(logits, 1) if (conf_dst or prob_dst) else None
                for i, ((row, col, h, w), _, _) in enumerate(pending):
                    window = Window(col, row, w, h)
                    dst.write(labels[i], 1, window=window)
                    if conf_dst:
                        conf = probs[i].max(0).values.masked_fill(~core[i], CONFIDENCE_NODATA)
                        conf_dst.write(conf.cpu().numpy(), 1, window=window)
                    if prob_dst:
                        prob = probs[i].masked_fill(~core[i][None], CONFIDENCE_NODATA)
                        prob_dst.write(prob.cpu().numpy(), window=window)
                done += len(pending)
                pending.clear()
                feedback.progress(100.0 * done / len(windows))

            for item in _prefetch(dataset, windows, radius):
                feedback.check_cancel()
                if pending and (item[1].shape != pending[0][1].shape or len(pending) >= cfg.batch_size):
                    flush()
                pending.append(item)
            if pending:
                flush()
            feedback.check_cancel()
            colormap = {int(cid): hex_to_rgba(c) for cid, c in zip(class_ids, metadata["class_colours"])}
            if dst.driver == "GTiff" and dtype in ("uint8", "uint16"):
                dst.write_colormap(1, colormap)
            dst.update_tags(HSIGAN_MODEL=os.path.basename(cfg.model),
                            HSIGAN_CLASSES=";".join(f"{i}={n}" for i, n in zip(class_ids, metadata["class_names"])))
            dst.close()
            write_class_table(class_tmp, [int(i) for i in class_ids], metadata["class_names"],
                              metadata["class_colours"])
        # atomic renames done; styles and COG conversion follow the finished files
    if cfg.cog:
        for _, path in outputs:
            _to_cog(path)
    write_text(qml_path(cfg.output), paletted_qml(class_ids.tolist(), metadata["class_names"],
                                                         metadata["class_colours"]))
    if cfg.output_confidence:
        write_text(qml_path(cfg.output_confidence), grey_qml())
    seconds = time.perf_counter() - started
    feedback.progress(100)
    feedback.info(f"Classification written to {cfg.output} in {seconds:.1f} s")
    return dict(output=cfg.output, output_confidence=cfg.output_confidence or None,
                output_probabilities=cfg.output_probabilities or None, seconds=seconds,
                class_ids=class_ids.tolist(), class_names=metadata["class_names"],
                class_colours=metadata["class_colours"], device=device.type)
