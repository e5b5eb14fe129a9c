"""Spectral kernel head: an RBF kernel classifier on the centre-pixel spectrum, fused with the network.

Kernel ridge regression on one-hot targets (fitted in hsigan_qgis/kernel_head.py): the class scores of a
pixel x are sum_i dual[i] * exp(-gamma * ||x - support[i]||^2) over the support spectra, where x is the
pixel's spectrum or, with `window` w > 0, the mean spectrum of the (2w+1) x (2w+1) pixels around it (a
cheap spatial feature: +10 OA for the head alone on Indian Pines at 15 px/class, -12 on the urban Berlin
scene, so hsigan:train chooses it on the validation blocks; bench/RESULTS.md, round 8). Written with
1x1 convolutions (||x||^2 - 2 x.s + ||s||^2) on a GPU and in ONNX, with the same products over blocks
of pixels on a CPU, so like SpectralSpatialNet it runs on a PxP patch (output 1x1) and densely on a tile
(output (H-2r)x(W-2r), the border of `radius` pixels cropped to align with the network's output); tiled
classify, Dask and ONNX export need nothing new.

FusedClassifier averages the network's softmax with the head's (softmax of scores / temperature) and
returns the log of that mixture: a softmax of it gives the mixture back, its argmax is the fused class.
"""
import torch
import torch.nn.functional as F
from torch import nn


CHUNK = 256  # support spectra per pass over a tile (GPU, ONNX)
CPU_PIXELS = 1024  # pixels per pass on a CPU: with 1000 support spectra a 4 MiB kernel block


class SpectralKernelHead(nn.Module):
    def __init__(self, support, dual, gamma: float, temperature: float, radius: int, window: int = 0):
        super().__init__()
        if not 0 <= window <= radius:
            raise ValueError(f"window {window} must lie within the patch radius {radius}")
        support = torch.as_tensor(support, dtype=torch.float32)
        dual = torch.as_tensor(dual, dtype=torch.float32)
        self.radius, self.window = radius, window
        self.register_buffer("support", support)  # (n, bands) normalised spectra
        self.register_buffer("dual", dual)  # (n, classes) dual coefficients
        self.register_buffer("gamma", torch.tensor(float(gamma)))
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x):
        """(N, classes, H-2r, W-2r) logits (kernel scores / temperature) of (N, bands, H, W)."""
        r = self.radius
        if self.window:  # the local mean spectrum; the output shrinks by the window, the crop by as much less
            x = F.avg_pool2d(x, 2 * self.window + 1, stride=1)
            r -= self.window
        if r:
            x = x[:, :, r:x.shape[2] - r, r:x.shape[3] - r]
        if x.device.type == "cpu" and not torch.onnx.is_in_onnx_export():
            return self.scores_in_blocks(x) / self.temperature
        return self.scores_by_convolution(x) / self.temperature

    def scores_by_convolution(self, x):
        """Kernel scores in whole-tile passes (GPU, ONNX). The exponent -gamma ||x - s||^2 = 2 gamma x.s -
        gamma ||s||^2 - gamma ||x||^2 comes from one convolution with a bias, then three in-place passes: half the
        CPU time of forming ||x - s||^2 first (bench/kernel_head_cost.py)."""
        gamma = self.gamma
        x_norm = (x * x).sum(1, keepdim=True).mul_(gamma)
        scores = None
        for start in range(0, len(self.support), CHUNK):  # memory: CHUNK x the tile, not n x the tile
            support, dual = self.support[start:start + CHUNK], self.dual[start:start + CHUNK]
            kernel = F.conv2d(x, (2 * gamma * support)[:, :, None, None], -gamma * (support * support).sum(1))
            kernel.sub_(x_norm).clamp_(max=0).exp_()  # a squared distance is never negative
            part = F.conv2d(kernel, dual.t()[:, :, None, None])
            scores = part if scores is None else scores.add_(part)
        return scores

    def scores_in_blocks(self, x):
        """The same scores as matrix products over CPU_PIXELS pixels at a time: the (pixels x support) kernel
        block stays in the CPU's cache through its in-place passes, 1.6x faster than whole-tile passes on a
        CPU (bench/kernel_head_cost.py); no view copies with channels-last tiles."""
        n, bands, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(-1, bands)
        gamma = self.gamma
        weights = (2 * gamma * self.support).t()
        bias = -gamma * (self.support * self.support).sum(1)
        scores = x.new_empty(len(pixels), self.dual.shape[1])
        for start in range(0, len(pixels), CPU_PIXELS):
            block = pixels[start:start + CPU_PIXELS]
            kernel = torch.addmm(bias, block, weights)
            kernel.sub_((block * block).sum(1, keepdim=True).mul_(gamma)).clamp_(max=0).exp_()
            torch.mm(kernel, self.dual, out=scores[start:start + CPU_PIXELS])
        return scores.reshape(n, h, w, -1).permute(0, 3, 1, 2)


class FusedClassifier(nn.Module):
    """log((1 - weight) * softmax(net(x)) + weight * softmax(head(x))): a drop-in for the network."""

    def __init__(self, net, head, weight: float):
        super().__init__()
        self.net, self.head = net, head
        self.radius = net.radius
        self.register_buffer("weight", torch.tensor(float(weight)))

    def mix(self, net_probabilities, x):
        """The fused class probabilities from the network's (already computed, e.g. averaged over TTA's
        orientations) and the head's on x."""
        return (1 - self.weight) * net_probabilities + self.weight * torch.softmax(self.head(x), 1)

    def forward(self, x):
        return torch.log(self.mix(torch.softmax(self.net(x), 1), x).clamp(min=1e-12))
