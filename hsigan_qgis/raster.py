"""Reading hyperspectral rasters: read-only opening, windows with a reflected halo, validity masks,
scale/offset. Every raster read of the engine goes through here."""
import os

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
    if dataset.driver == "VRT":
        missing = missing_vrt_sources(path)
        if missing:
            dataset.close()
            raise InputError(parameter, f"the virtual raster '{path}' reads {len(missing)} file(s) that do not "
                                        f"exist: {', '.join(missing[:3])}; restore them or rebuild the VRT")
    return dataset


def missing_vrt_sources(path):
    """The source files a VRT names that do not exist (GDAL would fail only when it reads them)."""
    import xml.etree.ElementTree as ElementTree
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError):
        return []  # not an XML file on disk (e.g. /vsi path): GDAL reports what it cannot read
    missing = []
    for source in root.iter("SourceFilename"):
        name = (source.text or "").strip()
        if not name or name.startswith("/vsi") or "://" in name:
            continue
        if source.get("relativeToVRT") == "1":
            name = os.path.join(os.path.dirname(os.path.abspath(path)), name)
        if not os.path.exists(name) and name not in missing:
            missing.append(name)
    return missing


def read_error(dataset, error, parameter="INPUT"):
    """An InputError for a raster whose blocks cannot be read: truncated, damaged, a VRT source gone."""
    detail = " ".join(str(error).replace("Read or write failed.", "").split())[:240]
    return InputError(parameter, f"cannot read raster '{dataset.name}' ({detail}); the file is truncated or "
                                 "damaged, or a file it refers to is missing; copy it again or give another raster")


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
    (no copy; halo 0 or a window inside the raster). Validity is judged one band at a time (no bands x
    pixels boolean cube), so a tile costs its data and little more.
    """
    window, pads = _window(dataset, row, col, height, width, halo)
    data = _read(dataset, window, out)
    flags, nodatas = dataset.mask_flag_enums, dataset.nodatavals
    shared, alpha_ok = _shared_masks(dataset, window, data)
    skipped = None if skip_bands is None else set(int(b) for b in np.asarray(skip_bands, dtype=int).ravel())
    valid = np.ones(data.shape[1:], dtype=bool)
    holding = 0  # bands judged (with skip_bands None: those holding a value somewhere here)
    for b, dtype in enumerate(dataset.dtypes):
        if skipped is not None and b in skipped:
            continue
        ok = _band_ok(data[b], flags[b], nodatas[b], dtype, shared, alpha_ok)
        if skipped is None and ok is not None and not ok.any():
            continue  # holds no value anywhere in the window: not judged (training, bad bands unknown)
        holding += 1
        if ok is not None:
            valid &= ok
    if skipped is None and not holding:  # no band holds a value anywhere here: nothing is valid
        valid[:] = False
    data = _scale(dataset, data)
    if pads:
        data = reflect_pad(data, pads)
        valid = reflect_pad(valid[None], pads)[0]
    return data, valid


def read_band(dataset, row: int, col: int, height: int, width: int, band: int = 1):
    """(values in the band's own type, validity from its mask) of a window of one band, as stored (no scale
    or offset): what a classification map holds. A damaged or truncated file ends as INPUT's error."""
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window
    window = Window(col, row, width, height)
    try:
        return dataset.read(band, window=window), dataset.read_masks(band, window=window) > 0
    except RasterioIOError as error:
        raise read_error(dataset, error) from None


def read_raw(dataset, row: int, col: int, height: int, width: int):
    """The window (no halo) in the file's own type, as stored: no scale or offset, no validity. For judging
    and normalising on a GPU (device_normalise). A damaged or truncated file ends as INPUT's error."""
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window
    try:
        return dataset.read(window=Window(col, row, width, height))
    except RasterioIOError as error:
        raise read_error(dataset, error) from None


def read_window_masks(dataset, row: int, col: int, height: int, width: int, halo: int = 0):
    """Like read_window, but the validity per band (B, h, w) before any band is judged, so that which
    bands to skip can be decided over several windows (training's scattered windows; judge_validity)."""
    window, pads = _window(dataset, row, col, height, width, halo)
    data = _read(dataset, window, None)
    flags, nodatas = dataset.mask_flag_enums, dataset.nodatavals
    shared, alpha_ok = _shared_masks(dataset, window, data)
    ok = np.ones(data.shape, dtype=bool)
    for b, dtype in enumerate(dataset.dtypes):
        band_ok = _band_ok(data[b], flags[b], nodatas[b], dtype, shared, alpha_ok)
        if band_ok is not None:
            ok[b] = band_ok
    data = _scale(dataset, data)
    if pads:
        data, ok = reflect_pad(data, pads), reflect_pad(ok, pads)
    return data, ok


def judge_validity(ok, skip_bands=None):
    """(h, w) validity from per-band validity `ok` (B, h, w); see read_window for `skip_bands`."""
    if skip_bands is None:
        skip_bands = np.flatnonzero(~ok.reshape(len(ok), -1).any(axis=1))
        if len(skip_bands) == len(ok):  # no band holds a value anywhere here: nothing is valid
            skip_bands = []
    judged = np.setdiff1d(np.arange(len(ok)), np.asarray(skip_bands, dtype=int))
    valid = ok[judged].all(axis=0) if len(judged) else np.ones(ok.shape[1:], dtype=bool)
    return valid


def _window(dataset, row, col, height, width, halo):
    """The part of the halo'd window inside the raster, and the reflection pads around it (None if none)."""
    from rasterio.windows import Window

    r0, c0 = row - halo, col - halo
    r1, c1 = row + height + halo, col + width + halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r1, dataset.height), min(c1, dataset.width)
    pads = ((rr0 - r0, r1 - rr1), (cc0 - c0, c1 - cc1))
    return Window(cc0, rr0, cc1 - cc0, rr1 - rr0), (pads if any(p for pair in pads for p in pair) else None)


def _read(dataset, window, out):
    """The window as float32 (into `out` when given); a damaged or truncated file ends as INPUT's error."""
    from rasterio.errors import RasterioIOError
    try:
        return dataset.read(window=window, out_dtype="float32") if out is None else _read_into(dataset, window, out)
    except RasterioIOError as error:
        raise read_error(dataset, error) from None


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


def _shared_masks(dataset, window, data):
    """(mask band of the first band that has one, or None; alpha validity, or None). GDAL uses an alpha
    band as mask only in 2- and 4-band rasters; a hyperspectral cube's alpha masks too."""
    from rasterio.enums import ColorInterp, MaskFlags

    shared = None
    for b, (band_flags, nodata) in enumerate(zip(dataset.mask_flag_enums, dataset.nodatavals)):
        if MaskFlags.nodata in band_flags and nodata is not None:
            continue
        if MaskFlags.per_dataset in band_flags or MaskFlags.alpha in band_flags:
            shared = dataset.read_masks(b + 1, window=window) > 0
            break
    alpha = [b for b, interp in enumerate(dataset.colorinterp) if interp == ColorInterp.alpha]
    alpha_ok = (data[alpha] > 0).all(axis=0) if alpha and shared is None else None
    return shared, alpha_ok


def _band_ok(band, band_flags, nodata, dtype, shared, alpha_ok):
    """Validity of one band's pixels (None: all valid). Per-band validity comes from the data already read
    (GDAL's nodata masks would read every band again); integer bands are finite and are not checked."""
    from rasterio.enums import MaskFlags

    ok = None if np.issubdtype(np.dtype(dtype), np.integer) else np.isfinite(band)
    if MaskFlags.nodata in band_flags and nodata is not None:
        if not np.isnan(nodata):  # NaN is already not finite
            differs = band != np.float32(nodata)
            ok = differs if ok is None else ok & differs
    elif MaskFlags.per_dataset in band_flags or MaskFlags.alpha in band_flags:
        ok = shared if ok is None else ok & shared
    if alpha_ok is not None:
        ok = alpha_ok if ok is None else ok & alpha_ok
    return ok


def _scale(dataset, data):
    scales, offsets = dataset.scales, dataset.offsets
    if any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
        data *= np.asarray(scales, dtype=np.float32)[:, None, None]
        data += np.asarray(offsets, dtype=np.float32)[:, None, None]
    return data


def reflect_pad(array, pads):
    """array padded by reflection about its edge pixel (numpy 'reflect'; 'edge' for a one-pixel side), the
    edge rule of training patches and tiled classification; pads = ((top, bottom), (left, right)) on the
    last two axes."""
    if not any(p for pair in pads for p in pair):
        return array
    lead = ((0, 0),) * (array.ndim - 2)
    return np.pad(array, lead + tuple(pads), mode="reflect" if min(array.shape[-2:]) > 1 else "edge")
