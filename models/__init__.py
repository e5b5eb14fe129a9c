"""Torch modules of HSI-GAN: the spectral-spatial classifier, the conditional generator, the critics
and the GAN losses. Nothing here reads files; inputs are normalised tensors shaped (N, bands, H, W)."""
