"""HSI-GAN engine: everything that does not need QGIS (rasters, labels, sampling, training, GANs,
tiled inference, metrics, model files, command line). Heavy imports (torch) stay inside functions so
that this package imports in a bare Python."""
__version__ = "0.1.0"
