"""The one way HSI-GAN writes a raster (classify's map, confidence and probabilities, from one machine or
from Dask's chunks): RasterWriter, shaped like the input raster (size, CRS, transform), written in a
temporary folder (outputs.atomic_path) and moved over the target only when complete, each window
fingerprinted and the closed file read back (write_check), then class colour table, category names and
attribute table, cloud-optimised conversion and the .qml style. The format follows the extension
(driver_for); a format not listed in FORMATS is refused before any work."""
import os

from .errors import InputError
from .outputs import atomic_path, disk_full_error, is_disk_full
from .styling import hex_to_rgba, qml_path, read_class_table, write_class_table
from .write_check import Fingerprints

# Formats whose output (one file or several) is tested to read back what was written; a multi-file set
# (.ers + data file, .mrf + .idx + data) is written in a temporary folder under its final names and
# moved together. Others (.vrt, .nc, ...) are refused before any work.
FORMATS = {"tif": ("GTiff", "GeoTIFF"), "tiff": ("GTiff", "GeoTIFF"), "img": ("HFA", "Erdas Imagine"),
           "ers": ("ERS", "ER Mapper"), "mrf": ("MRF", "Meta Raster Format"), "pix": ("PCIDSK", "PCI")}


EXTRA_FILES = {"ERS": ("",), "MRF": (".idx", ".pzp")}  # files a driver writes beside the named one


def driver_for(path, parameter="OUTPUT"):
    """GDAL driver that writes files with this extension (GTiff without one); InputError for a format
    HSI-GAN does not write."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        return "GTiff"
    if ext not in FORMATS:
        known = ", ".join(f".{e} ({n})" for e, (_, n) in FORMATS.items() if e != "tiff")
        raise InputError(parameter, f"HSI-GAN does not write '.{ext}' rasters; use one of {known}")
    return FORMATS[ext][0]


def written_files(path, parameter, styled=True):
    """[(parameter, path)] of every file a RasterWriter for `path` leaves: the raster, its .aux.xml, the
    driver's companion files and (styled) the .qml."""
    stem = os.path.splitext(path)[0]
    files = [(parameter, path), (parameter, path + ".aux.xml")]
    files += [(parameter, stem + e) for e in EXTRA_FILES.get(driver_for(path, parameter), ())]
    return files + ([(parameter, qml_path(path))] if styled else [])


ZLEVEL = 1  # GeoTIFF DEFLATE level. GDAL compresses the written blocks when the file closes, after the last
# tile: a 2048^2 class map took 0.13 s there at GDAL's level 6, 0.02 s at level 1, for 8-14 % more bytes.


def profile(like, driver, dtype, count, nodata):
    """rasterio creation profile of a raster with `like`'s size, CRS and transform: tiled, DEFLATE-compressed
    GeoTIFF (level ZLEVEL; BigTIFF when needed), DEFLATE MRF (its PNG default holds no float32), the
    driver's defaults otherwise."""
    profile = dict(driver=driver, width=like.width, height=like.height, count=count, dtype=dtype,
                   crs=like.crs, transform=like.transform, nodata=nodata)
    if driver == "GTiff":
        block = 256 if min(like.width, like.height) >= 256 else 16 * max(1, min(like.width, like.height) // 16)
        profile.update(tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                       zlevel=ZLEVEL, interleave="band", BIGTIFF="IF_SAFER")
    elif driver == "MRF":
        profile.update(compress="DEFLATE")
    return profile


def to_cog(temporary, prints):
    """Converts the finished temporary GeoTIFF to a cloud-optimised one in place (through a sub-folder, so
    the file keeps its name), verified against the original pixel by pixel."""
    from osgeo import gdal
    folder = os.path.join(os.path.dirname(temporary), "cog")
    os.mkdir(folder)
    converted = os.path.join(folder, os.path.basename(temporary))
    result = gdal.Translate(converted, temporary, format="COG", creationOptions=["COMPRESS=DEFLATE"])
    if result is None:
        raise InputError("COG", "GDAL could not write a cloud-optimised GeoTIFF here")
    result = None
    prints.verify(converted)
    for name in os.listdir(folder):
        os.replace(os.path.join(folder, name), os.path.join(os.path.dirname(temporary), name))
    os.rmdir(folder)


class RasterWriter:
    """One output raster like `like`, opened in `stack` (a contextlib.ExitStack): leaving the stack without
    an error moves the finished, verified file set over `path`; with an error, nothing of it remains.
    write() each window, then finish() once."""

    def __init__(self, stack, path, parameter, like, dtype, count, nodata, inputs=(), messages=None, cog=False):
        import rasterio
        self.path, self.parameter, self.dtype, self.cog = path, parameter, dtype, cog
        self.shape = (count, like.height, like.width)
        self.temporary = stack.enter_context(atomic_path(path, parameter, inputs))
        self.dataset = stack.enter_context(rasterio.open(self.temporary, "w", **profile(
            like, driver_for(path, parameter), dtype, count, nodata)))
        self.prints = Fingerprints(path, parameter, messages)

    def write(self, array, window):
        """array (h, w) into band 1, or (bands, h, w) into every band, at window (row, col, h, w)."""
        from rasterio.windows import Window
        row, col, h, w = window
        if array.ndim == 2:
            self.dataset.write(array, 1, window=Window(col, row, w, h))
        else:
            self.dataset.write(array, window=Window(col, row, w, h))
        self.prints.record(array, col, row, w, h)

    def finish(self, qml=None, classes=None, tags=None, feedback=None):
        """Close and verify the file, then complete it inside its temporary folder. classes: (ids, names,
        '#rrggbb' colours) of a class map: colour table (8/16-bit maps), then, once the pixels are verified,
        category names and attribute table. tags: {name: text} metadata. qml: the style written beside it.
        A full disk ends as an InputError naming the parameter; nothing has replaced the old output yet."""
        if classes and self.dtype in ("uint8", "uint16"):
            ids, _, colours = classes
            try:
                self.dataset.write_colormap(1, {int(i): hex_to_rgba(c) for i, c in zip(ids, colours)})
            except Exception as error:  # a format without colour tables still gets the .qml
                if feedback is not None:
                    feedback.warning(f"{self.dataset.driver} could not store the colour table ({error}); "
                                     "the .qml has it")
        if tags:
            self.dataset.update_tags(**tags)
        self.dataset.close()
        self.prints.verify(self.temporary, self.shape, self.dtype)
        if classes:
            ids, names, colours = [int(i) for i in classes[0]], [str(n) for n in classes[1]], classes[2]
            if not write_class_table(self.temporary, ids, names, colours):
                if feedback is not None:
                    feedback.info("No raster attribute table written (GDAL's Python bindings are missing here or "
                                  "cannot update this format); the colour table and the .qml carry the classes")
            elif read_class_table(self.temporary) != dict(zip(ids, names)):
                raise disk_full_error(self.path, self.parameter, "the class names could not be stored")
        try:
            if self.cog:
                to_cog(self.temporary, self.prints)
            if qml:
                with open(os.path.join(os.path.dirname(self.temporary), os.path.basename(qml_path(self.path))), "w",
                          encoding="utf-8") as stream:
                    stream.write(qml)
        except OSError as error:
            if is_disk_full(error):
                raise disk_full_error(self.path, self.parameter, error.strerror) from None
            raise
