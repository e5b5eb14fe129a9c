"""Validity and normalisation of a chunk on the classifying device (a GPU), from the file's own values.

On a GPU, reading is nearly all of classify's time. Read as float32 and normalised on the CPU, a chunk of
int16 bands costs its reading thread a type conversion, a validity test per band and three passes of
normalisation, and twice its stored bytes to copy to the GPU. Read in the file's own type instead, the
chunk goes to the GPU as stored and the GPU converts, judges and normalises it: the same float32
operations in the same order as raster.read_window followed by Normalisation.apply, so the same values.

This holds when a pixel's validity follows from its own values (a band's nodata value, NaN): the file has
no mask band and no alpha band, and all bands have one type of SENT_TYPE. Otherwise for_raster() gives
None and the chunk is read and normalised on the CPU as before.
"""
import numpy as np

from .raster import read_raw

# the file's type -> the numpy type read and sent (uint16 goes as int16 bits: torch's uint16 is not complete).
# Types whose every value is exact in float32, so the GPU's conversion cannot round otherwise than GDAL's.
SENT_TYPE = {"uint8": "uint8", "int8": "int8", "int16": "int16", "uint16": "int16", "float32": "float32"}


class DeviceNormalisation:
    """Reads a window in the file's type (read()) and turns it into normalised float32 bands and validity
    on `device` (into()), as read_window + Normalisation.apply would on the CPU."""

    def __init__(self, dataset, norm, device):
        import torch

        self.dtype = dataset.dtypes[0]
        self.device = device
        judged_by_value = [dataset.nodatavals[b] is not None and not np.isnan(dataset.nodatavals[b])
                           and _has_nodata_flag(dataset.mask_flag_enums[b]) for b in range(dataset.count)]
        # a band's nodata value, NaN where none is judged (x == NaN is never true)
        self.nodata = _column([dataset.nodatavals[b] if judged else np.nan
                               for b, judged in enumerate(judged_by_value)], device)
        self.check_finite = not np.issubdtype(np.dtype(self.dtype), np.integer)
        scaled = any(s != 1.0 for s in dataset.scales) or any(o != 0.0 for o in dataset.offsets)
        self.scales = _column(dataset.scales, device) if scaled else None
        self.offsets = _column(dataset.offsets, device) if scaled else None
        self.mean, self.std = _column(norm.mean, device), _column(norm.std, device)
        self.bad_bands = torch.as_tensor(norm.bad_bands, dtype=torch.long, device=device)  # not judged

    @classmethod
    def for_raster(cls, dataset, norm, device):
        """A DeviceNormalisation for this raster, or None when its validity needs a mask or alpha band, or
        its bands' types differ or are not in SENT_TYPE."""
        from rasterio.enums import ColorInterp, MaskFlags

        if norm is None or len(set(dataset.dtypes)) != 1 or dataset.dtypes[0] not in SENT_TYPE:
            return None
        if any(interp == ColorInterp.alpha for interp in dataset.colorinterp):
            return None
        if any(flag not in (MaskFlags.all_valid, MaskFlags.nodata) for flags in dataset.mask_flag_enums
               for flag in flags):
            return None
        return cls(dataset, norm, device)

    def read(self, dataset, row, col, height, width):
        """The window's bands as stored, in SENT_TYPE's type (host memory)."""
        raw = read_raw(dataset, row, col, height, width)
        return raw.view(SENT_TYPE[self.dtype])

    def into(self, raw, data, valid):
        """raw (bands, h, w) from read(), copied to the device and written into `data` (bands, h, w) float32
        and `valid` (h, w) bool, views into a chunk's buffers on the device, normalised."""
        import torch

        data.copy_(torch.from_numpy(raw).to(self.device))  # float32 as GDAL gives it (exact, SENT_TYPE)
        if self.dtype == "uint16":  # sent as int16 bits: -1 is 65535 (exact: 65536 is a power of two)
            data.remainder_(65536)
        invalid = data == self.nodata  # (bands, h, w) bool: a quarter of the chunk, no float copy
        if self.check_finite:
            invalid.logical_or_(torch.isfinite(data).logical_not_())
        invalid[self.bad_bands] = False
        valid.copy_(invalid.any(0).logical_not_())
        if self.scales is not None:
            data.mul_(self.scales).add_(self.offsets)
        data.sub_(self.mean).div_(self.std)
        data.masked_fill_(~valid, 0.0)
        data[self.bad_bands] = 0.0


def _has_nodata_flag(flags):
    from rasterio.enums import MaskFlags
    return MaskFlags.nodata in flags


def _column(values, device):
    import torch
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device)[:, None, None]
