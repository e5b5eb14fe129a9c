"""The classifier's class probabilities averaged over a small box of neighbouring pixels (SMOOTHING).

Neighbouring pixels of a field scene almost always share a class; the network reads a P x P patch, but the
spectral kernel head fused with it reads one spectrum, so its map is speckled. Averaging the probabilities
over a k x k box before the arg-max is the simplest spectral-spatial regularisation of a map. Pixels without
data (their normalised input is 0 in every band, as hsigan:classify and the ONNX export make them) do not
vote: the mean runs over the box's valid pixels. Dense and fully convolutional like the classifier: a tile
with a halo of radius + box // 2 pixels gives its map, seam-free.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BoxSmoothed(nn.Module):
    """log of the mean over a box x box window of softmax(inner(x)), valid pixels only: a drop-in for the
    classifier (inner: the network or models/spectral_kernel.FusedClassifier)."""

    def __init__(self, inner, box: int):
        super().__init__()
        if box < 3 or box % 2 == 0:
            raise ValueError(f"box {box} must be odd and at least 3")
        self.inner, self.box = inner, box
        self.radius = inner.radius + box // 2

    def smooth(self, probabilities, x):
        """The box mean of class probabilities (N, C, H - 2r, W - 2r) computed by the inner model on x
        (N, bands, H, W), r = inner.radius; (N, C, H - 2R, W - 2R), R = self.radius."""
        r = self.inner.radius
        inside = x[:, :, r:x.shape[2] - r, r:x.shape[3] - r]
        valid = (inside.abs().amax(1, keepdim=True) > 0).to(probabilities.dtype)
        votes = F.avg_pool2d(probabilities * valid, self.box, stride=1)
        return votes / F.avg_pool2d(valid, self.box, stride=1).clamp(min=1e-6)

    def forward(self, x):
        return torch.log(self.smooth(torch.softmax(self.inner(x), 1), x).clamp(min=1e-12))
