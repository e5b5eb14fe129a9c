"""Test-time dihedral averaging (TTA): the classifier sees a tile in its 8 flips/rotations and the class
probabilities are averaged after each map is turned back.

Training already shows every patch in a random one of these 8 orientations (training.random_dihedral),
so each orientation is an equally good view of the same ground; averaging them removes the net's
orientation-specific noise. The classifier is fully convolutional, so a turned tile gives the turned
map and the cost is 8 dense passes (still far below reading the raster on a GPU; about 8x the compute on
a CPU). Each output pixel still depends only on its own P x P neighbourhood, so tiling stays seam-free.
"""

DIHEDRAL = 8


def turn(x, k):
    """Orientation k (0-7) of the last two axes: a flip of the columns for k >= 4, then k % 4 quarter
    turns, as training.random_dihedral draws them."""
    import torch

    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def turn_back(x, k):
    import torch

    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def dihedral_probabilities(model, x):
    """(N, classes, H-2r, W-2r) class probabilities of a normalised (N, bands, H, W) batch: the mean of
    the softmax over the 8 orientations. model: in eval mode. A network fused with a spectral kernel head
    (models/spectral_kernel.FusedClassifier): the head sees each pixel alone, so its probabilities are the
    same in every orientation and it runs once (the same mean, 7 passes of the head fewer). A model with
    SMOOTHING (models/smoothing.BoxSmoothed) averages the mean over its box, as without TTA."""
    import torch

    from .torch_modules import torch_module

    if isinstance(model, torch_module("smoothing").BoxSmoothed):  # the box mean of the averaged probabilities
        with torch.inference_mode():
            smoothed = model.smooth(dihedral_probabilities(model.inner, x), x)
        return smoothed.clone()  # outside inference mode: a normal tensor, as below
    fused = isinstance(model, torch_module("spectral_kernel").FusedClassifier)
    net = model.net if fused else model
    total = None
    with torch.inference_mode():
        for k in range(DIHEDRAL):
            p = turn_back(torch.softmax(net(turn(x, k).contiguous(memory_format=torch.channels_last)), 1), k)
            total = p if total is None else total.add_(p)
        total.div_(DIHEDRAL)
        if fused:
            total = model.mix(total, x)
    return total.clone()  # a normal tensor: callers may update it in place (inference tensors refuse that)
