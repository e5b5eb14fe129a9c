"""The .hsigan model file: a zip holding metadata.json and one .npy array per tensor.

Nothing in it is ever unpickled: arrays are read with numpy's allow_pickle=False and metadata is JSON,
so a file from a stranger can fail to load but cannot run code. Layout (format 1):
  metadata.json            format, versions, bands, wavelengths, classes, normalisation, architecture,
                           training parameters and metrics
  tensors/<module>/<name>.npy   e.g. tensors/classifier/head.weight.npy
"""
import io
import json
import os
import zipfile

import numpy as np

from .errors import InputError
from .outputs import atomic_path

FORMAT = "hsigan-model"
FORMAT_VERSION = 1
MAX_METADATA_BYTES = 16 << 20


def save(path, metadata: dict, state_dicts: dict):
    """Write atomically: a temporary file beside the target, renamed when complete.

    state_dicts maps a module name ('classifier', 'generator') to {tensor name: array or tensor}.
    Refuses non-finite weights, so a diverged model is never written."""
    metadata = dict(metadata, format=FORMAT, format_version=FORMAT_VERSION)
    arrays = {}
    for module, state in state_dicts.items():
        for name, value in state.items():
            array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError(f"{module}.{name} holds NaN or infinite weights; the model was not written")
            arrays[f"tensors/{module}/{name}.npy"] = array
    with atomic_path(path) as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata, indent=1, sort_keys=True))
            for name, array in sorted(arrays.items()):
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                archive.writestr(name, buffer.getvalue())


def load(path, parameter="MODEL", with_tensors=True):
    """(metadata, {module: {name: numpy array}}); InputError for anything that is not a valid model."""
    bad = f"'{path}' is not an HSI-GAN model file"
    if not os.path.isfile(path):
        raise InputError(parameter, f"model file '{path}' does not exist; give a file written by hsigan:train")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("metadata.json")
            if info.file_size > MAX_METADATA_BYTES:
                raise InputError(parameter, f"{bad} (metadata too large)")
            metadata = json.loads(archive.read(info).decode("utf-8"))
            if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
                raise InputError(parameter, f"{bad} (no HSI-GAN metadata); train one with hsigan:train")
            version = metadata.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise InputError(parameter, f"'{path}' is model format {version}, newer than this plugin "
                                            f"reads ({FORMAT_VERSION}); update the HSI-GAN plugin")
            _check_metadata(metadata, parameter, bad)
            tensors = {}
            if with_tensors:
                for name in archive.namelist():
                    if not (name.startswith("tensors/") and name.endswith(".npy")):
                        continue
                    _, module, tensor = name[:-4].split("/", 2)
                    array = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
                    tensors.setdefault(module, {})[tensor] = array
                if "classifier" not in tensors:
                    raise InputError(parameter, f"{bad} (no classifier weights)")
            return metadata, tensors
    except InputError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError, EOFError, OSError) as error:
        raise InputError(parameter, f"{bad} or it is damaged ({type(error).__name__}: {error}); "
                                    "train the model again or copy it anew") from None


def _check_metadata(metadata, parameter, bad):
    need = {"bands": int, "class_ids": list, "class_names": list, "patch_size": int,
            "mean": list, "std": list, "architecture": dict}
    for key, kind in need.items():
        if not isinstance(metadata.get(key), kind):
            raise InputError(parameter, f"{bad} (metadata lacks a valid '{key}')")
    if not (len(metadata["mean"]) == len(metadata["std"]) == metadata["bands"]):
        raise InputError(parameter, f"{bad} (normalisation does not match its band count)")
    if len(metadata["class_ids"]) != len(metadata["class_names"]) or len(metadata["class_ids"]) < 2:
        raise InputError(parameter, f"{bad} (class table is inconsistent)")
