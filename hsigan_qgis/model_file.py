"""The .hsigan model file: a zip holding metadata.json and one .npy array per tensor.

Nothing in it is ever unpickled: arrays are read with numpy's allow_pickle=False and metadata is JSON,
so a file from a stranger can fail to load but cannot run code. Layout (format 1):
  metadata.json            format, versions, bands, wavelengths, classes, normalisation, architecture,
                           training parameters and metrics
  tensors/<module>/<name>.npy   e.g. tensors/classifier/head.weight.npy; modules: classifier, generator
                           (wgan), spectral_head (SPECTRAL_HEAD on: support spectra, dual coefficients)
"""
import contextlib
import io
import json
import os
import zipfile

import numpy as np

from .errors import InputError
from .outputs import atomic_path

FORMAT = "hsigan-model"
FORMAT_VERSION = 2  # the newest this plugin reads and writes
# Version 2 added SMOOTHING: a model with a smoothing box is written as version 2, so a plugin that reads only
# version 1 refuses it (asking for an update) rather than classifying it without the smoothing. Every other
# model is still written as version 1.
SMOOTHING_VERSION = 2
MAX_METADATA_BYTES = 16 << 20


def save(path, metadata: dict, state_dicts: dict):
    """Write atomically: a temporary file beside the target, renamed when complete.

    state_dicts maps a module name ('classifier', 'generator') to {tensor name: array or tensor}.
    Refuses non-finite weights, so a diverged model is never written."""
    metadata = dict(metadata, format=FORMAT, format_version=SMOOTHING_VERSION if smoothing_box(metadata) > 1 else 1)
    arrays = {}
    for module, state in state_dicts.items():
        for name, value in state.items():
            array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ValueError(f"{module}.{name} holds NaN or infinite weights; the model was not written")
            arrays[f"tensors/{module}/{name}.npy"] = array
    with atomic_path(path, "OUTPUT_MODEL") as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata, indent=1, sort_keys=True))
            for name, array in sorted(arrays.items()):
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                archive.writestr(name, buffer.getvalue())


PICKLE_NAMES = ("data.pkl", ".pkl", ".pickle", ".pt", ".pth")


@contextlib.contextmanager
def open_archive(path, parameter, file_format, max_version, noun, missing_hint, again):
    """Yields (zip archive, metadata) of an HSI-GAN zip file ('model', 'sample') after the checks every
    such file shares; any failure inside the with-block, expected or not, ends as an InputError naming
    `parameter` (the file is untrusted: nothing in it is executed, arrays need allow_pickle=False)."""
    bad = f"'{path}' is not an HSI-GAN {noun} file"
    if not os.path.isfile(path):
        raise InputError(parameter, f"{noun} file '{path}' does not exist; {missing_hint}")
    try:
        if not zipfile.is_zipfile(path):
            raise InputError(parameter, f"{bad}: it is not a zip archive (random bytes, a pickle, or a truncated "
                                        f"or damaged copy); {again}")
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "metadata.json" not in names:
                pickled = any(n.endswith(PICKLE_NAMES) for n in names)
                what = ("a PyTorch checkpoint or other pickle-based file, which HSI-GAN never loads because "
                        "unpickling can run code" if pickled else "a zip archive without HSI-GAN metadata")
                raise InputError(parameter, f"{bad}: it is {what}; {again}")
            info = archive.getinfo("metadata.json")
            if info.file_size > MAX_METADATA_BYTES:
                raise InputError(parameter, f"{bad} (metadata too large); {again}")
            metadata = json.loads(archive.read(info).decode("utf-8"))
            if not isinstance(metadata, dict) or metadata.get("format") != file_format:
                raise InputError(parameter, f"{bad} (no HSI-GAN {noun} metadata); {missing_hint}")
            version = metadata.get("format_version")
            if not _is_int(version) or version < 1:
                raise InputError(parameter, f"{bad} (format version {version!r} is not valid); {again}")
            if version > max_version:
                raise InputError(parameter, f"'{path}' is {noun} format {version}, newer than this plugin "
                                            f"reads ({max_version}); update the HSI-GAN plugin")
            yield archive, metadata
    except InputError:
        raise
    except Exception as error:  # damaged zip, bad JSON, pickled arrays refused by allow_pickle=False, ...
        raise InputError(parameter, f"{bad} or it is damaged ({type(error).__name__}: {str(error)[:160]}); "
                                    f"{again}") from None


MAX_MODEL_BYTES = 512 << 20  # all tensors together; a model of this plugin is a few MB
MAX_WIDTH = 4096  # layer widths a model may declare
MAX_SUPPORT = 100000  # support spectra a spectral kernel head may declare (training caps them at 1000)
MAX_BOX = 9  # the side of the smoothing box a model may declare (training chooses 3, 5 or 7)


def expected_tensors(metadata, declared, parameter, bad, again):
    """{member name: shape} of every tensor the model's architecture holds, from its metadata; the two
    free layer widths of the classifier come from the declared shapes of its first and last layer
    (models trained with other widths load too). Built on torch's meta device: no memory is used."""
    import torch
    from .torch_modules import torch_module
    SpectralSpatialNet = torch_module("classifier").SpectralSpatialNet
    ConditionalGenerator = torch_module("generator").ConditionalGenerator

    arch = metadata["architecture"]
    head = declared.get("tensors/classifier/head.weight.npy", ((), None))[0]
    first = declared.get("tensors/classifier/spectral.0.weight.npy", ((), None))[0]
    if len(head) != 4 or len(first) != 4:
        raise InputError(parameter, f"{bad} (no classifier weights); {again}")
    width, spectral_width = head[1], first[0]
    if not (1 <= width <= MAX_WIDTH and 1 <= spectral_width <= MAX_WIDTH):
        raise InputError(parameter, f"{bad} (its layer widths {width}, {spectral_width} are implausible); {again}")
    modules = {"classifier": lambda: SpectralSpatialNet(arch["bands"], arch["classes"], arch["patch_size"],
                                                        width=width, spectral_width=spectral_width)}
    generator = metadata.get("generator")
    if generator is not None:
        if not (isinstance(generator, dict) and generator.get("name") == "ConditionalGenerator"
                and all(_is_int(generator.get(k)) and 1 <= generator[k] <= MAX_WIDTH for k in ("noise_dim", "width"))):
            raise InputError(parameter, f"{bad} (its generator description is not valid); {again}")
        modules["generator"] = lambda: ConditionalGenerator(arch["bands"], arch["classes"], arch["patch_size"],
                                                            generator["noise_dim"], generator["width"])
    head = metadata.get("spectral_head")
    if head is not None:  # support spectra x bands, dual coefficients x classes (models/spectral_kernel.py)
        SpectralKernelHead = torch_module("spectral_kernel").SpectralKernelHead
        modules["spectral_head"] = lambda: SpectralKernelHead(torch.zeros(head["support"], arch["bands"]),
                                                              torch.zeros(head["support"], arch["classes"]),
                                                              1.0, 1.0, arch["patch_size"] // 2)
    expected = {}
    with torch.device("meta"):
        for module, build in modules.items():
            for name, value in build().state_dict().items():
                expected[f"tensors/{module}/{name}.npy"] = tuple(value.shape)
    return expected


def _declared(archive, info):
    """(shape, dtype, header bytes) from a member's .npy header, without reading its data."""
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(stream)
        return tuple(shape), dtype, stream.tell()


def load(path, parameter="MODEL", with_tensors=True, modules=None):
    """(metadata, {module: {name: numpy array}}); InputError for anything that is not a valid model.

    The file is untrusted and small files can claim gigabytes: its members must be exactly metadata.json
    and the tensors its architecture holds, each tensor's declared shape (from its .npy header, read
    before any data) must be the architecture's and its stored size must match, and all together must
    stay under MAX_MODEL_BYTES. modules: the modules to read ('classifier', 'generator'), all if None."""
    bad = f"'{path}' is not an HSI-GAN model file"
    again = "give a .hsigan file written by hsigan:train (train the model again or copy it anew)"
    with open_archive(path, parameter, FORMAT, FORMAT_VERSION, "model",
                      "give a file written by hsigan:train", again) as (archive, metadata):
        _check_metadata(metadata, parameter, bad)
        tensors = {}
        if with_tensors:
            members = {info.filename: info for info in archive.infolist()}
            names = [n for n in members if n != "metadata.json"]
            odd = [n for n in names if not (n.startswith("tensors/") and n.endswith(".npy")
                                            and len(n[:-4].split("/", 2)) == 3 and all(n[:-4].split("/", 2)))]
            if odd:
                raise InputError(parameter, f"{bad} (odd entry '{odd[0][:80]}'); {again}")
            heads = {n: members[n] for n in names if n.endswith(("/head.weight.npy", "/spectral.0.weight.npy"))}
            declared = {n: _declared(archive, info) for n, info in heads.items()}
            expected = expected_tensors(metadata, declared, parameter, bad, again)
            extra = sorted(set(names) - set(expected))
            if extra:
                raise InputError(parameter, f"{bad} (it holds {len(extra)} member(s) its architecture has no use "
                                            f"for, e.g. '{extra[0][:80]}'); {again}")
            missing = sorted(set(expected) - set(names))
            if missing:
                raise InputError(parameter, f"{bad} (weights '{missing[0][8:-4][:80]}' are missing); {again}")
            wanted = [n for n in expected if modules is None or n.split("/")[1] in modules]
            total = 0
            for name in wanted:
                shape, dtype, header = _declared(archive, members[name])
                if dtype.kind not in "fiub" or dtype.hasobject:
                    raise InputError(parameter, f"{bad} (tensor '{name[:80]}' holds {dtype}); {again}")
                if shape != expected[name] and not (np.prod(shape) == np.prod(expected[name]) == 1):  # a count
                    raise InputError(parameter, f"{bad} (tensor '{name[8:-4][:80]}' is declared {shape}, its "
                                                f"architecture needs {expected[name]}); {again}")
                size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                total += size
                if members[name].file_size != header + size or total > MAX_MODEL_BYTES:
                    raise InputError(parameter, f"{bad} (tensor '{name[8:-4][:80]}' does not have its declared "
                                                f"size); {again}")
            for name in wanted:
                with archive.open(members[name]) as stream:
                    array = np.lib.format.read_array(stream, allow_pickle=False)
                if array.dtype.kind == "f" and not np.isfinite(array).all():
                    raise InputError(parameter, f"'{path}' holds NaN or infinite weights ({name[8:-4]}); "
                                                "it cannot classify anything; train the model again")
                module, tensor = name[:-4].split("/", 2)[1:]
                tensors.setdefault(module, {})[tensor] = array
        return metadata, tensors


def smoothing_box(metadata):
    """The side of the box the model's class probabilities are averaged over (SMOOTHING; 1: none)."""
    return int((metadata.get("smoothing") or {}).get("box", 1))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _check_metadata(metadata, parameter, bad):
    """Every field the classifier and the map writer use, with its type, so a crafted file fails here
    with a clear message rather than deep in classification."""
    need = {"bands": int, "class_ids": list, "class_names": list, "patch_size": int,
            "mean": list, "std": list, "architecture": dict}
    for key, kind in need.items():
        if not isinstance(metadata.get(key), kind) or isinstance(metadata.get(key), bool):
            raise InputError(parameter, f"{bad} (metadata lacks a valid '{key}')")
    bands, patch, ids = metadata["bands"], metadata["patch_size"], metadata["class_ids"]
    if not 1 <= bands <= 100000 or not (1 <= patch <= 31 and patch % 2 == 1):
        raise InputError(parameter, f"{bad} (band count or patch size out of range)")
    if not (len(metadata["mean"]) == len(metadata["std"]) == bands):
        raise InputError(parameter, f"{bad} (normalisation does not match its band count)")
    if not all(_is_number(v) for v in metadata["mean"]) or not all(_is_number(v) and v > 0 for v in metadata["std"]):
        raise InputError(parameter, f"{bad} (normalisation holds non-numbers)")
    if len(ids) != len(metadata["class_names"]) or len(ids) < 2:
        raise InputError(parameter, f"{bad} (class table is inconsistent)")
    if not all(_is_int(i) and 0 < i < 2 ** 32 for i in ids) or len(set(ids)) != len(ids):
        raise InputError(parameter, f"{bad} (class ids must be distinct positive integers)")
    if not all(isinstance(n, str) for n in metadata["class_names"]):
        raise InputError(parameter, f"{bad} (class names must be text)")
    colours = metadata.get("class_colours")
    if not (isinstance(colours, list) and len(colours) == len(ids)
            and all(isinstance(c, str) and len(c) == 7 and c[0] == "#" and _is_hex(c[1:]) for c in colours)):
        raise InputError(parameter, f"{bad} (class colours are missing or not '#rrggbb')")
    arch = metadata["architecture"]
    if arch.get("name") != "SpectralSpatialNet" or arch.get("bands") != bands or arch.get("classes") != len(ids) \
            or arch.get("patch_size") != patch:
        raise InputError(parameter, f"{bad} (its architecture is unknown or disagrees with its metadata)")
    head = metadata.get("spectral_head")
    if head is not None and not (isinstance(head, dict) and head.get("name") == "SpectralKernelHead"
                                 and _is_int(head.get("support")) and 1 <= head["support"] <= MAX_SUPPORT
                                 and _is_number(head.get("weight")) and 0 <= head["weight"] <= 1
                                 and _is_int(head.get("window", 0)) and 0 <= head.get("window", 0) <= patch // 2):
        raise InputError(parameter, f"{bad} (its spectral kernel head description is not valid)")
    smoothing = metadata.get("smoothing")
    if smoothing is not None and not (isinstance(smoothing, dict) and _is_int(smoothing.get("box"))
                                      and 1 <= smoothing["box"] <= MAX_BOX and smoothing["box"] % 2 == 1):
        raise InputError(parameter, f"{bad} (its smoothing box is not valid)")
    bad_bands = metadata.get("bad_bands", [])
    if not (isinstance(bad_bands, list) and all(_is_int(b) and 0 <= b < bands for b in bad_bands)):
        raise InputError(parameter, f"{bad} (its list of ignored bands is not valid)")
    wavelengths = metadata.get("wavelengths")
    if wavelengths is not None and not (isinstance(wavelengths, list) and len(wavelengths) == bands
                                        and all(_is_number(v) for v in wavelengths)):
        raise InputError(parameter, f"{bad} (wavelengths do not match its band count)")


def _is_hex(text):
    try:
        int(text, 16)
        return True
    except ValueError:
        return False


def check_wavelengths(metadata, wavelengths, feedback=None, parameter="INPUT", tolerance=0.01):
    """Compare the raster's band wavelengths with the model's (same band count already checked).

    Different wavelengths are an error (the bands mean other things); missing ones on either side can only
    be warned about, since the band order cannot then be checked."""
    model = metadata.get("wavelengths")
    if model and wavelengths:
        worst = max(abs(a - b) / max(abs(b), 1e-9) for a, b in zip(wavelengths, model))
        if worst > tolerance:
            first = next(i for i, (a, b) in enumerate(zip(wavelengths, model)) if abs(a - b) / max(abs(b), 1e-9) > tolerance)
            raise InputError(parameter, f"band {first + 1} of the raster is at wavelength {wavelengths[first]:g} but "
                                        f"the model's is at {model[first]:g}; use a raster with the bands the model "
                                        "was trained on (same sensor, same band subset and order)")
    elif model and not wavelengths and feedback is not None:
        feedback.warning("the raster does not state its band wavelengths, so HSI-GAN cannot check that its bands "
                         "are the model's; the band count matches, the order is assumed to")
    elif wavelengths and not model and feedback is not None:
        feedback.warning("the model does not record band wavelengths, so the raster's bands cannot be checked "
                         "against it; the band count matches, the order is assumed to")
