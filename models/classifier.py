"""Spectral-spatial classifier that runs on patches and, unchanged, densely on whole tiles.

The net is fully convolutional: 1x1 convolutions mix the spectrum ("spectral" layers), then
``radius`` unpadded 3x3 convolutions grow the spatial context by one pixel per layer, then a 1x1 head
gives class logits. On a PxP patch (P = 2*radius+1) the output is 1x1; on an HxW tile it is
(H-2r)x(W-2r), and each output pixel equals what the same weights give on the patch centred on it.
That identity is what makes tiled inference seam-free and ~P^2 times cheaper than patch-per-pixel.
Input: (N, bands, H, W) normalised reflectance. Output: (N, classes, H-2r, W-2r) logits.
"""
from torch import nn


class SpectralSpatialNet(nn.Module):
    def __init__(self, bands: int, classes: int, patch_size: int = 9, width: int = 64,
                 spectral_width: int = 128, dropout: float = 0.2):
        super().__init__()
        if patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd and >= 1, got {patch_size}")
        self.radius = patch_size // 2
        self.spectral = nn.Sequential(
            nn.Conv2d(bands, spectral_width, 1), nn.BatchNorm2d(spectral_width), nn.ReLU(inplace=True),
            nn.Conv2d(spectral_width, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        )
        spatial = []
        for _ in range(self.radius):
            spatial += [nn.Conv2d(width, width, 3), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        self.spatial = nn.Sequential(*spatial)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(width, classes, 1)

    def features(self, x):
        return self.spatial(self.spectral(x))

    def forward(self, x):
        return self.head(self.dropout(self.features(x)))
