"""Reconstruction head for scene pretraining: the classifier's features at a pixel -> that pixel's spectrum.

A 1x1 convolution stack on SpectralSpatialNet.features (width channels), so on a PxP patch it gives the
(N, bands, 1, 1) spectrum of the centre pixel. Used only while pretraining; the model file never holds it.
"""
from torch import nn


class SpectrumHead(nn.Module):
    def __init__(self, width: int, bands: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(width, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, bands, 1))

    def forward(self, features):
        return self.net(features)
