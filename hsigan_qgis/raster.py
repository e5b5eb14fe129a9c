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


def read_window(dataset, row: int, col: int, height: int, width: int, halo: int = 0, skip_bands=None, out=None):
    """Bands and validity of rows [row-halo, row+height+halo) x cols likewise, as float32.

    Parts outside the raster are filled by reflection about the edge pixel (numpy 'reflect': the row
    at -1 is row 1), which is the edge rule of both training patches and tiled inference.
    Scale/offset metadata is applied, so a raster stored as scaled integers reads as its float values.

    A pixel is valid when every band it is judged on holds a value there: not the band's nodata value,
    not masked by a mask band or an alpha band, and finite. Bands in `skip_bands` (0-based; the model's
    bad bands, which inference zeroes anyway) are not judged; with None (training, bad bands not yet
    known) the bands that hold no value anywhere in the window are skipped. Returns (data (B,h,w),
    valid (h,w)). out: a float32 (B,h,w) array, possibly a view into a larger one, that GDAL reads into
    (no copy; halo 0 or a window inside the raster).
    """
    from rasterio.enums import ColorInterp, MaskFlags
    from rasterio.windows import Window

    r0, c0 = row - halo, col - halo
    r1, c1 = row + height + halo, col + width + halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r1, dataset.height), min(c1, dataset.width)
    window = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
    data = dataset.read(window=window, out_dtype="float32") if out is None else _read_into(dataset, window, out)
    # Per-band validity from the data already read (GDAL's nodata masks would read every band again),
    # one band at a time (no bands x pixels boolean cube); integer bands are finite and are not checked.
    flags, nodatas = dataset.mask_flag_enums, dataset.nodatavals
    shared = None  # the mask band (or GDAL's alpha mask) of the first band that has one
    for b, (band_flags, nodata) in enumerate(zip(flags, nodatas)):
        if MaskFlags.nodata in band_flags and nodata is not None:
            continue
        if MaskFlags.per_dataset in band_flags or MaskFlags.alpha in band_flags:
            shared = dataset.read_masks(b + 1, window=window) > 0
            break
    # GDAL uses an alpha band as mask only in 2- and 4-band rasters; a hyperspectral cube's alpha masks too.
    alpha = [b for b, interp in enumerate(dataset.colorinterp) if interp == ColorInterp.alpha]
    alpha_ok = (data[alpha] > 0).all(axis=0) if alpha and shared is None else None
    skipped = None if skip_bands is None else set(int(b) for b in np.asarray(skip_bands, dtype=int).ravel())
    valid = np.ones(data.shape[1:], dtype=bool)
    holding = 0  # bands judged (with skip_bands None: those holding a value somewhere here)
    for b, (band_flags, nodata, dtype) in enumerate(zip(flags, nodatas, dataset.dtypes)):
        if skipped is not None and b in skipped:
            continue
        ok = None if np.issubdtype(np.dtype(dtype), np.integer) else np.isfinite(data[b])
        if MaskFlags.nodata in band_flags and nodata is not None:
            if not np.isnan(nodata):  # NaN is already not finite
                differs = data[b] != np.float32(nodata)
                ok = differs if ok is None else ok & differs
        elif MaskFlags.per_dataset in band_flags or MaskFlags.alpha in band_flags:
            ok = shared if ok is None else ok & shared
        if alpha_ok is not None:
            ok = alpha_ok if ok is None else ok & alpha_ok
        if skipped is None and ok is not None and not ok.any():
            continue  # holds no value anywhere in the window: not judged (training, bad bands unknown)
        holding += 1
        if ok is not None:
            valid &= ok
    if skipped is None and not holding:  # no band holds a value anywhere here: nothing is valid
        valid[:] = False
    scales, offsets = dataset.scales, dataset.offsets
    if any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
        data *= np.asarray(scales, dtype=np.float32)[:, None, None]
        data += np.asarray(offsets, dtype=np.float32)[:, None, None]
    pads = ((rr0 - r0, r1 - rr1), (cc0 - c0, c1 - cc1))
    if any(p for pair in pads for p in pair):
        data = np.pad(data, ((0, 0),) + pads, mode="reflect" if min(data.shape[1:]) > 1 else "edge")
        valid = np.pad(valid, pads, mode="reflect" if min(valid.shape) > 1 else "edge")
    return data, valid


def _read_into(dataset, window, out):
    """dataset.read(window) into `out` (float32, any strides): GDAL writes there directly where rasterio
    takes strided arrays, else through one copy."""
    try:
        data = dataset.read(window=window, out=out)
    except (ValueError, TypeError):
        data = dataset.read(window=window, out_dtype="float32")
    if data is not out:
        out[...] = data
    return out
