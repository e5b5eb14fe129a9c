"""Critic on PxP patches.

ConditionalCritic: WGAN-GP critic with a projection term (Miyato & Koyama 2018) so that it judges
(patch, label) pairs; no batch normalisation, as the gradient penalty requires.
The semi-supervised discriminator is the classifier itself (models.classifier), see hsigan_qgis.gan.
"""
from torch import nn


def _patch_encoder(bands: int, patch_size: int, width: int, spectral_width: int = 64):
    layers = [nn.Conv2d(bands, spectral_width, 1), nn.LeakyReLU(0.2), nn.Conv2d(spectral_width, width, 1),
              nn.LeakyReLU(0.2)]
    for _ in range(patch_size // 2):
        layers += [nn.Conv2d(width, width, 3), nn.LeakyReLU(0.2)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class ConditionalCritic(nn.Module):
    def __init__(self, bands: int, classes: int, patch_size: int, width: int = 32):
        super().__init__()
        self.encode = _patch_encoder(bands, patch_size, width)
        self.score = nn.Linear(width, 1)
        self.embed = nn.Embedding(classes, width)

    def forward(self, x, labels):
        h = self.encode(x)
        return self.score(h).squeeze(1) + (self.embed(labels) * h).sum(1)
