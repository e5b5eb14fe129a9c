"""Whether a GDAL format can hold an output before the run writes it: some drivers create only certain
data types or band counts (BMP: bytes only; IDRISI: one float band), which GDAL reports only when the file
is created, after the model has been loaded and the temp file named. A 4 x 4 probe in GDAL's in-memory
file system answers first, so the user sees which parameter to change. Without GDAL's Python bindings
(rasterio alone) there is no probe."""
from .errors import InputError, one_line

GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "uint32": "UInt32", "float32": "Float32"}


def check_creatable(path, parameter, driver_name, dtype, count):
    try:
        from osgeo import gdal
    except ImportError:  # rasterio alone (a GPU server): GDAL reports such a format when the file is created
        return
    driver = gdal.GetDriverByName(driver_name)
    probe = f"/vsimem/hsigan-format-probe/{parameter}{path[path.rfind('.'):] if '.' in path else ''}"
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        gdal.ErrorReset()
        dataset = driver.Create(probe, 4, 4, count, gdal.GetDataTypeByName(GDAL_TYPES[dtype]))
        message = gdal.GetLastErrorMsg()
        ok = dataset is not None
        dataset = None
        if ok:
            driver.Delete(probe)
    except RuntimeError as error:  # when something enabled GDAL exceptions
        ok, message = False, str(error)
    finally:
        gdal.PopErrorHandler()
    if not ok:
        raise InputError(parameter, f"the {driver_name} format of '{path}' cannot hold {count} band(s) of {dtype} "
                                    f"({one_line(message, 160)}); use .tif (GeoTIFF) or .img (Erdas Imagine)")
