"""The training-sample file (.hsamples) that hsigan:augment writes and hsigan:train reads (SAMPLES), beside
model_file.py for models.

Format "hsigan-samples" version 1: a zip, nothing in it is pickled (arrays are read with numpy's
allow_pickle=False, metadata is JSON), so a file from a stranger cannot run code.
  metadata.json   format, format_version, hsigan/torch versions, created, source raster, labels,
                  class_field, bands, wavelengths (or null), patch_size, units ("raster": the raster's
                  values after its scale/offset), mean/std (per-band normalisation of the raster's valid
                  pixels in a random sample of the whole scene, see training_patches; the trained model uses them), class_ids, class_names,
                  class_colours, real/synthetic counts per class, GAN parameters and history, fidelity
  patches.npy     float32 (N, bands, P, P) in raster units
  labels.npy      int64 (N,) index into class_ids
  synthetic.npy   bool (N,) true for GAN-made samples
  rows.npy, cols.npy   int64 (N,) raster row/column of each real sample's centre pixel; -1 if synthetic

Every check a file must pass before it is used: sample_checks.py.
"""
import io
import json
import zipfile

import numpy as np

from .outputs import atomic_path

FORMAT = "hsigan-samples"
FORMAT_VERSION = 1
ARRAYS = ("patches", "labels", "synthetic", "rows", "cols")


def write_samples(path, metadata, arrays):
    metadata = dict(metadata, format=FORMAT, format_version=FORMAT_VERSION)
    with atomic_path(path, "OUTPUT") as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata, indent=1, sort_keys=True))
            for name in ARRAYS:
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())


def read_samples(path, parameter="SAMPLES"):
    """(metadata, {name: array}); InputError for anything that is not a valid sample file."""
    from .model_file import open_archive
    from .sample_checks import check_samples
    with open_archive(path, parameter, FORMAT, FORMAT_VERSION, "sample", "write one with hsigan:augment",
                      "give a .hsamples file written by hsigan:augment") as (archive, metadata):
        arrays = {name: np.load(io.BytesIO(archive.read(f"{name}.npy")), allow_pickle=False)
                  for name in ARRAYS}
        check_samples(metadata, arrays, path, parameter)
    return metadata, arrays
