"""Class-conditional generator of labelled synthetic PxP patches (Mirza & Osindero 2014 conditioning,
trained as a WGAN-GP, Gulrajani et al. 2017). Output: (N, bands, P, P) in the normalised space of the
input raster, so that synthetic patches can join the classifier's training set directly."""
import torch
from torch import nn


class ConditionalGenerator(nn.Module):
    def __init__(self, bands: int, classes: int, patch_size: int, noise_dim: int = 64, width: int = 64):
        super().__init__()
        self.noise_dim = noise_dim
        self.patch_size = patch_size
        self.width = width
        self.embed = nn.Embedding(classes, noise_dim)
        self.project = nn.Sequential(
            nn.Linear(2 * noise_dim, 256), nn.ReLU(inplace=True),
            nn.Linear(256, width * patch_size * patch_size), nn.ReLU(inplace=True),
        )
        self.decode = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, bands, 1),
        )

    def forward(self, noise, labels):
        h = self.project(torch.cat([noise, self.embed(labels)], dim=1))
        h = h.view(-1, self.width, self.patch_size, self.patch_size)
        return self.decode(h)

    def sample(self, labels, generator=None):
        noise = torch.randn(len(labels), self.noise_dim, generator=generator, device=labels.device)
        return self.forward(noise, labels)
