"""The classifier applied to the raster: a model file's weights into a SpectralSpatialNet made ready for
dense inference, and the labels, confidence and probabilities of halo'd, normalised tiles. The same code
serves one machine (classify.py) and the workers of a Dask cluster (dask_classify.py)."""
import numpy as np

from .errors import InputError, one_line
from .model_file import smoothing_box
from .tta import dihedral_probabilities

CLASS_NODATA = 0
CONFIDENCE_NODATA = -1.0


def load_classifier(metadata, tensors, device):
    import torch
    from .torch_modules import torch_module
    SpectralSpatialNet = torch_module("classifier").SpectralSpatialNet

    arch = metadata["architecture"]
    state = {name: torch.from_numpy(np.array(array)) for name, array in tensors["classifier"].items()}
    try:  # the file is untrusted: tensors of any shape must end as a clear error
        widths = {}  # layer widths as stored (models from other settings load too)
        if state.get("head.weight") is not None and state.get("spectral.0.weight") is not None:
            widths = dict(width=state["head.weight"].shape[1], spectral_width=state["spectral.0.weight"].shape[0])
        model = SpectralSpatialNet(arch["bands"], arch["classes"], arch["patch_size"], **widths)
        model.load_state_dict(state)
        head = metadata.get("spectral_head")
        if head is not None:  # the network fused with its spectral kernel head (models/spectral_kernel.py)
            kernel = torch_module("spectral_kernel")
            arrays = {name: torch.from_numpy(np.array(array)) for name, array in tensors["spectral_head"].items()}
            fitted = kernel.SpectralKernelHead(arrays["support"], arrays["dual"], 1.0, 1.0, model.radius,
                                               head.get("window", 0))
            fitted.load_state_dict(arrays)
            model = kernel.FusedClassifier(model, fitted, head["weight"])
        if smoothing_box(metadata) > 1:  # the probabilities averaged over a box (models/smoothing.py)
            model = torch_module("smoothing").BoxSmoothed(model, smoothing_box(metadata))
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise InputError("MODEL", f"the weights do not fit the architecture in its metadata ({one_line(error)}); "
                                  "train the model again or copy it anew")
    return model.to(device).eval()


def halo(metadata):
    """Pixels of real data a tile needs around it: the patch radius, plus half the smoothing box."""
    return metadata["patch_size"] // 2 + smoothing_box(metadata) // 2


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


def dense_logits(model, x):
    """(N, classes, H-2r, W-2r) float32 logits of a normalised (N, bands, H, W) batch. Float32 throughout:
    on an H200 float16 autocast computed only 1.2x faster than float32 while reading the raster took
    >99 % of a classification, and it flipped labels near class boundaries (bench/RESULTS-cuda.md)."""
    import torch
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return model(x)
