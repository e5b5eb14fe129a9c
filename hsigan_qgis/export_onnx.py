"""hsigan:export_onnx — the trained classifier as an ONNX segmentation model for other runtimes.

What the ONNX model computes (dense, as the Deepness QGIS plugin runs models; tile by tile):
  input  "input":         float32 (N, bands, T, T), T = the exported tile size, N free. Standardised
                          reflectance: (raw - mean) / std per band, raw as read from the raster after
                          its scale/offset. Deepness does exactly this with the metadata written here:
                          it divides raw values by 255 and then applies standardization_mean/std, which
                          are therefore mean/255 and std/255.
  inside the graph:       bad bands (model's bad_bands) and non-finite values (NaN nodata) set to 0, as
                          hsigan:classify does; the edge of the tile extended by reflection by
                          r = patch_size // 2 pixels (plus half the SMOOTHING box when the model has one);
                          the classifier (batch norms folded), its box mean if any, and a softmax.
  output "probabilities": float32 (N, classes, T, T), class probabilities; channel k is class
                          class_ids[k] (Deepness: class_names {"k": name}).

Equality with hsigan:classify: an output pixel depends on the input pixels within r of it. hsigan reads
each tile with a halo of r real pixels (reflection only outside the raster), so the output of ONNX
equals hsigan's map on every pixel at least r pixels inside the tile fed to it, and on the raster's own
edges (same reflection rule). Feed tiles that overlap by 2r pixels and keep each tile's centre
(tiles_overlap below says so to Deepness); tests/test_export_onnx.py does this over the sample raster
and gets hsigan:classify's map. Not carried over: hsigan's validity mask (nodata pixels that are not NaN
enter as values; Deepness has its own processing-area mask) and the wavelength check.

Metadata (onnx metadata_props, every value a JSON text, as Deepness reads them): model_type, class_names,
tile_size, tiles_overlap, standardization_mean, standardization_std, seg_thresh, seg_small_segment,
resolution (when given) — and hsigan_* keys for other runtimes: bands, wavelengths, raw mean/std,
bad_bands, class ids/names/colours, patch size, the input layout and normalisation in words.
"""
import json
import math
import os
import warnings

import numpy as np

from . import __version__, model_file
from .config import ExportOnnxConfig, check
from .errors import InputError
from .feedback import Feedback
from .outputs import atomic_path, check_job_files
from .predict import halo
from .results import ExportOnnxResult

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
DEEPNESS_SCALE = 255.0  # Deepness divides every raster value by 255 before standardising


def dense_module(metadata, tensors):
    """torch module: standardised (N, bands, T, T) -> class probabilities (N, classes, T, T)."""
    import torch
    import torch.nn.functional as F

    from .predict import load_classifier, prepare_model

    net = prepare_model(load_classifier(metadata, tensors, torch.device("cpu")), torch.device("cpu"))
    net = net.to(memory_format=torch.contiguous_format)
    radius = halo(metadata)
    keep = torch.ones(metadata["bands"])
    keep[[int(b) for b in metadata.get("bad_bands", [])]] = 0.0

    class Dense(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("keep", keep.view(1, -1, 1, 1))

        def forward(self, x):
            x = torch.where(torch.isnan(x) | torch.isinf(x), torch.zeros_like(x), x) * self.keep
            if radius:
                x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
            return torch.softmax(self.net(x), dim=1)

    return Dense().eval()


def deepness_metadata(metadata, tile_size, resolution_cm=0.0):
    """{key: JSON text}: Deepness's keys and hsigan_* keys (see the module docstring)."""
    radius = halo(metadata)
    mean = [float(v) for v in metadata["mean"]]
    std = [float(v) for v in metadata["std"]]
    names = list(metadata["class_names"])
    # Deepness keeps the centre of each tile and crops half the overlap on each side: 2r pixels of overlap
    # leave r real pixels around every kept one.
    overlap_percent = min(50, math.ceil(100.0 * 2 * radius / tile_size))
    entries = {
        "model_type": "Segmentor",
        "class_names": {str(k): name for k, name in enumerate(names)},
        "tile_size": tile_size,
        "tiles_overlap": overlap_percent,
        "standardization_mean": [v / DEEPNESS_SCALE for v in mean],
        "standardization_std": [v / DEEPNESS_SCALE for v in std],
        "seg_thresh": 0.0,  # every pixel gets its most probable class, as in hsigan:classify
        "seg_small_segment": 1,  # no smoothing of the map
        "hsigan_format": "hsigan-onnx-1",
        "hsigan_version": __version__,
        "hsigan_bands": metadata["bands"],
        "hsigan_wavelengths": metadata.get("wavelengths"),
        "hsigan_mean": mean,
        "hsigan_std": std,
        "hsigan_bad_bands": [int(b) for b in metadata.get("bad_bands", [])],
        "hsigan_class_ids": [int(i) for i in metadata["class_ids"]],
        "hsigan_class_names": names,
        "hsigan_class_colours": list(metadata["class_colours"]),
        "hsigan_patch_size": metadata["patch_size"],
        "hsigan_halo": radius,
        "hsigan_input": f"{INPUT_NAME}: float32 (N, {metadata['bands']}, {tile_size}, {tile_size}) = "
                        "(raw - hsigan_mean) / hsigan_std per band (raw after the raster's scale/offset); "
                        "NaN and hsigan_bad_bands are zeroed inside the model",
        "hsigan_output": f"{OUTPUT_NAME}: float32 (N, {len(names)}, {tile_size}, {tile_size}) class "
                         "probabilities, channel k = hsigan_class_ids[k]; exact where a pixel has hsigan_halo "
                         "real pixels around it in the tile (overlap tiles by 2 x hsigan_halo)",
    }
    if resolution_cm > 0:
        entries["resolution"] = float(resolution_cm)
    return {key: json.dumps(value) for key, value in entries.items()}


def export_onnx(cfg: ExportOnnxConfig, feedback: Feedback = None) -> ExportOnnxResult:
    """Write cfg.model's classifier as an ONNX model (atomically) and return what was written."""
    import onnx
    import torch

    feedback = feedback or Feedback()
    if not cfg.output.lower().endswith(".onnx"):
        raise InputError("OUTPUT", f"'{cfg.output}' does not end in .onnx; give a file name ending in .onnx "
                                   "(Deepness and other runtimes look for it)")
    check(cfg)  # bounds from the config metadata (TILE_SIZE, RESOLUTION)
    check_job_files([("OUTPUT", cfg.output)], (cfg.model,))
    metadata, tensors = model_file.load(cfg.model)
    radius = halo(metadata)
    if cfg.tile_size < 4 * radius + 1:
        raise InputError("TILE_SIZE", f"{cfg.tile_size} is too small for this model's {metadata['patch_size']} px "
                                      f"patches; use at least {4 * radius + 1} (256 is typical)")
    module = dense_module(metadata, tensors)
    example = torch.zeros(1, metadata["bands"], cfg.tile_size, cfg.tile_size)
    feedback.info(f"Exporting a {metadata['patch_size']} px-patch classifier of {metadata['bands']} bands and "
                  f"{len(metadata['class_ids'])} classes for {cfg.tile_size} px tiles (ONNX opset {OPSET})")
    feedback.progress(10)
    with atomic_path(cfg.output, "OUTPUT", (cfg.model,)) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding and deprecation
        torch.onnx.export(module, (example,), temporary, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
        feedback.progress(70)
        model = onnx.load(temporary)
        # The exporter loses the static tile size after the reflection pad (it names the output's height
        # 'batch'); Deepness needs (N, classes, T, T) to see a square mask, so it is stated here.
        dims = model.graph.output[0].type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        for dim, size in zip(dims[1:], (len(metadata["class_ids"]), cfg.tile_size, cfg.tile_size)):
            dim.dim_value = size
        props = deepness_metadata(metadata, cfg.tile_size, cfg.resolution)
        for key, value in props.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        model.doc_string = f"HSI-GAN classifier from {os.path.basename(cfg.model)}: {json.loads(props['hsigan_input'])}"
        onnx.checker.check_model(model)
        onnx.save(model, temporary)
    feedback.progress(100)
    feedback.info(f"ONNX model written to {cfg.output}")
    return ExportOnnxResult(output=cfg.output, tile_size=cfg.tile_size, halo=radius, bands=metadata["bands"],
                            class_ids=[int(i) for i in metadata["class_ids"]], class_names=metadata["class_names"],
                            opset=OPSET)


def standardise_like_deepness(raw, metadata_props):
    """What Deepness does to a raster block (bands, h, w) before the model, from the ONNX metadata:
    raw / 255, then (x - standardization_mean) / standardization_std per band."""
    mean = np.asarray(json.loads(metadata_props["standardization_mean"]), dtype=np.float32)[:, None, None]
    std = np.asarray(json.loads(metadata_props["standardization_std"]), dtype=np.float32)[:, None, None]
    return ((raw.astype(np.float32) / np.float32(DEEPNESS_SCALE)) - mean) / std
