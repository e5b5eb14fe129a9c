"""Proof that a raster was written completely before it replaces anything.

GDAL reports a failed write (a full disk, a quota, an I/O error) by printing it, not by raising, and a
GeoTIFF whose tiles could not be written reads back as nodata without any error. So every window the
engine writes is fingerprinted (CRC-32 of its bytes), and the closed file is opened afresh and each
window read back and compared: any difference, or any error reading it, means the file is not what was
written. Memory: one window at a time."""
import contextlib
import zlib

import numpy as np

from .outputs import disk_full_error


class Fingerprints:
    """CRC-32 of each window written to one raster: record() while writing, verify() after closing."""

    def __init__(self, path, parameter, messages=None):
        self.path, self.parameter = path, parameter  # the final path and parameter, for the message
        self.messages = messages if messages is not None else []  # GDAL's errors while writing (gdal_errors)
        self.windows = []

    def record(self, array, col, row, width, height):
        """array: (height, width) or (bands, height, width), exactly as written at (col, row)."""
        self.windows.append(((col, row, width, height), zlib.crc32(np.ascontiguousarray(array).tobytes())))

    def verify(self, written, shape=None, dtype=None):
        """Raises the OUTPUT InputError unless `written` (the closed temporary file) opens and reads back
        every recorded window byte for byte; shape: (bands, height, width)."""
        import rasterio
        from rasterio.windows import Window
        try:
            with rasterio.open(written) as dataset:
                if shape is not None and (dataset.count, dataset.height, dataset.width) != tuple(shape):
                    raise ValueError(f"read back as {dataset.count} x {dataset.height} x {dataset.width}")
                if dtype is not None and dataset.dtypes[0] != dtype:
                    raise ValueError(f"read back as {dataset.dtypes[0]}")
                for (col, row, width, height), crc in self.windows:
                    data = dataset.read(window=Window(col, row, width, height))
                    if zlib.crc32(np.ascontiguousarray(data).tobytes()) != crc:
                        raise ValueError(f"the pixels at column {col}, row {row} read back differently")
        except Exception as error:  # unreadable, truncated, or other pixels: not the file that was written
            detail = (self.messages[0] if self.messages else str(error)).replace(str(written), self.path)[:200]
            raise disk_full_error(self.path, self.parameter, detail) from None


@contextlib.contextmanager
def gdal_errors():
    """Yields a list that collects GDAL's error messages in this thread (instead of printing them), so
    that a failed write is reported once, in the output's own message."""
    try:
        from osgeo import gdal
    except ImportError:
        yield []
        return
    messages = []

    def handler(level, number, text):
        if level >= gdal.CE_Failure:
            messages.append(text)
    gdal.PushErrorHandler(handler)
    try:
        yield messages
    finally:
        gdal.PopErrorHandler()

