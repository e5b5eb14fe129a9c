"""Reading hyperspectral rasters: read-only opening, windows with a reflected halo, validity masks,
scale/offset. Every raster read of the engine goes through here."""
import numpy as np

from .errors import InputError


def open_raster(path: str, parameter: str = "INPUT"):
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        dataset = rasterio.open(path, "r")
    except (RasterioIOError, OSError) as error:
        raise InputError(parameter, f"cannot open raster '{path}' ({error}); give a GDAL-readable file")
    if dataset.count < 1:
        dataset.close()
        raise InputError(parameter, f"raster '{path}' has no bands")
    return dataset


def band_wavelengths(dataset):
    """Band centre wavelengths from GDAL/ENVI metadata, or None when the file does not say."""
    values = []
    for band in range(1, dataset.count + 1):
        tags = dataset.tags(band)
        text = tags.get("wavelength") or tags.get("WAVELENGTH") or tags.get("CENTRAL_WAVELENGTH_UM")
        if text is None:
            return None
        try:
            values.append(float(text))
        except ValueError:
            return None
    return values


def read_window(dataset, row: int, col: int, height: int, width: int, halo: int = 0):
    """Bands and validity of rows [row-halo, row+height+halo) x cols likewise, as float32.

    Parts outside the raster are filled by reflection about the edge pixel (numpy 'reflect'), which
    is the edge rule of both training patches and tiled inference. Returns (data (B,h,w), valid (h,w)).
    """
    from rasterio.windows import Window

    r0, c0 = row - halo, col - halo
    r1, c1 = row + height + halo, col + width + halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r1, dataset.height), min(c1, dataset.width)
    window = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
    data = dataset.read(window=window, out_dtype="float32")
    valid = dataset.dataset_mask(window=window) > 0
    scales, offsets = dataset.scales, dataset.offsets
    if any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
        data *= np.asarray(scales, dtype=np.float32)[:, None, None]
        data += np.asarray(offsets, dtype=np.float32)[:, None, None]
    valid &= np.isfinite(data).all(axis=0)
    pads = ((rr0 - r0, r1 - rr1), (cc0 - c0, c1 - cc1))
    if any(p for pair in pads for p in pair):
        data = np.pad(data, ((0, 0),) + pads, mode="reflect" if min(data.shape[1:]) > 1 else "edge")
        valid = np.pad(valid, pads, mode="reflect" if min(valid.shape) > 1 else "edge")
    return data, valid
