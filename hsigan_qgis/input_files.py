"""Every file behind the inputs of a job, so that no output (sidecars and twins included) can replace one:
GDAL's file list of each raster or vector dataset (a VRT's sources, a shapefile's .shx/.dbf, an
existing .aux.xml), seen through symbolic and hard links."""
import os

from .errors import InputError


def _strip(source):
    """The file part of a QGIS source ('labels.gpkg|layername=a' -> 'labels.gpkg')."""
    return source.split("|")[0] if source else source


def dataset_files(source):
    """The files GDAL reads for `source` (itself included); [source] when GDAL cannot open it."""
    path = _strip(source)
    files = [path]
    try:
        from osgeo import gdal
    except ImportError:
        return files
    if not os.path.isfile(path):
        return files
    with _quiet(gdal):
        dataset = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_VECTOR | gdal.OF_READONLY)
        if dataset is not None:
            files += [f for f in (dataset.GetFileList() or []) if f]
            dataset = None
    return files


class _quiet:
    """GDAL's errors (a zip model file is not a dataset) are not the user's business here."""

    def __init__(self, gdal):
        self.gdal = gdal

    def __enter__(self):
        self.gdal.PushErrorHandler("CPLQuietErrorHandler")

    def __exit__(self, *exc):
        self.gdal.PopErrorHandler()


def input_files(inputs):
    """Every file of every input (None and '' skipped), without duplicates."""
    files = []
    for source in inputs:
        if source:
            for path in dataset_files(source):
                if path not in files:
                    files.append(path)
    return files


def same_file(a, b):
    """a and b are one file: the same path after resolving links, or one inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist
        return False


def refuse_if_input(path, parameter, inputs):
    direct = [_strip(s) for s in inputs if s]
    for source in input_files(inputs):
        if same_file(path, source):
            via = "" if any(same_file(source, d) for d in direct) else f" (GDAL reads '{source}' through an input)"
            raise InputError(parameter, f"'{path}' is also an input{via}; choose another output path so the "
                                        "input is kept")
