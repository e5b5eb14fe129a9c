"""Issue 6: a small, seeded, bounded fuzz of the two loaders that read files from strangers: the model
loader (model_file.load, then the classifier built from what it returned) and the label loader
(labels.rasterise). Every outcome must be a success or an InputError: no other exception, no hang."""
import io
import json
import os
import random
import zipfile

import numpy as np
import pytest

from hsigan_qgis import labels, model_file
from hsigan_qgis.errors import InputError
from hsigan_qgis.raster import open_raster
from errors_helpers import (EPSG, PIXEL, SIZE, X0, Y0, scene, stripe_features,
                                 write_labels)

MODEL_CASES = 100
LABEL_CASES = 100


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "insert", "zero-run", "splice"])
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "insert":
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "zero-run":
        at = rng.randrange(len(data))
        data[at:at + rng.randint(1, 256)] = bytes(min(256, len(data) - at))
    else:
        a, b = sorted(rng.randrange(len(data)) for _ in range(2))
        data = data[:a] + data[b:] + data[a:b]
    return bytes(data)


ODD_VALUES = [None, True, 0, -1, 1, 3, 2 ** 40, 1.5, float("nan"), "", "x", [], [1], [1, 2], {}, {"a": 1},
              [None] * 6, ["#zzzzzz"] * 3, list(range(100))]


def mutate_metadata(metadata: dict, rng: random.Random) -> dict:
    metadata = json.loads(json.dumps(metadata))
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(metadata))
        action = rng.choice(["delete", "replace", "nested"])
        if action == "delete":
            del metadata[key]
        elif action == "nested" and isinstance(metadata[key], dict) and metadata[key]:
            inner = rng.choice(sorted(metadata[key]))
            metadata[key][inner] = rng.choice(ODD_VALUES)
        elif action == "nested" and isinstance(metadata[key], list) and metadata[key]:
            metadata[key][rng.randrange(len(metadata[key]))] = rng.choice(ODD_VALUES)
        else:
            metadata[key] = rng.choice(ODD_VALUES)
    return metadata


def random_npy(rng: random.Random) -> bytes:
    shape = tuple(rng.randint(0, 5) for _ in range(rng.randint(0, 4)))
    dtype = rng.choice(["float32", "float64", "int64", "uint8", "bool", "complex64", "U3", "float16"])
    array = np.zeros(shape, dtype=dtype)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    return mutate_bytes(data, rng) if rng.random() < 0.3 else data


def mutated_model(source: str, rng: random.Random) -> bytes:
    raw = open(source, "rb").read()
    kind = rng.choice(["bytes", "bytes", "metadata", "tensor", "entries", "random"])
    if kind == "bytes":
        return mutate_bytes(raw, rng)
    if kind == "random":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 2048)))
    out = io.BytesIO()
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        names = archive.namelist()
        victim = rng.choice([n for n in names if n.startswith("tensors/")])
        for name in names:
            data = archive.read(name)
            if kind == "metadata" and name == "metadata.json":
                data = json.dumps(mutate_metadata(json.loads(data), rng)).encode()
            if kind == "tensor" and name == victim:
                data = random_npy(rng)
            if kind == "entries" and name == victim and rng.random() < 0.5:
                continue  # a missing tensor
            target.writestr(name, data)
        if kind == "entries":
            target.writestr(rng.choice(["tensors/classifier/extra.npy", "tensors/x.npy", "tensors//a.npy",
                                        "tensors/classifier/head.weight.npy/x.npy"]), random_npy(rng))
    return out.getvalue()


@pytest.mark.hostile
def test_fuzz_model_loader(small_model, tmp_path):
    import torch
    from hsigan_qgis.predict import load_classifier
    rng = random.Random(6)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(MODEL_CASES):
        path = tmp_path / f"case{case}.hsigan"
        path.write_bytes(mutated_model(small_model[0], rng))
        try:
            metadata, tensors = model_file.load(str(path))
            load_classifier(metadata, tensors, torch.device("cpu"))
            outcomes["loaded"] += 1
        except InputError as error:
            assert error.parameter == "MODEL", (case, error)
            assert "Traceback" not in str(error)
            outcomes["refused"] += 1
        path.unlink()
    assert outcomes["refused"] > MODEL_CASES // 2, outcomes


GEOMETRY_TYPES = ["Point", "MultiPoint", "LineString", "Polygon", "MultiPolygon", "GeometryCollection", None]


def random_coordinates(rng, depth):
    def xy():
        choice = rng.random()
        if choice < 0.7:  # inside or near the scene
            return [X0 + rng.uniform(-50, SIZE * PIXEL + 50), Y0 - rng.uniform(-50, SIZE * PIXEL + 50)]
        if choice < 0.85:
            return [rng.uniform(-1e9, 1e9), rng.uniform(-1e9, 1e9)]
        return [rng.choice([0, 1e308, -1e308]), rng.uniform(-90, 90)]
    if depth == 0:
        return xy()
    return [random_coordinates(rng, depth - 1) for _ in range(rng.randint(0, 5))]


def random_geometry(rng):
    kind = rng.choice(GEOMETRY_TYPES)
    depth = {"Point": 0, "MultiPoint": 1, "LineString": 1, "Polygon": 2, "MultiPolygon": 3}
    if kind is None:
        return None
    if kind == "GeometryCollection":
        return {"type": kind, "geometries": [g for g in (random_geometry(rng) for _ in range(rng.randint(0, 3))) if g]}
    coordinates = random_coordinates(rng, depth[kind])
    if kind == "Polygon" and rng.random() < 0.5:  # a closed ring, more often valid
        x, y = X0 + rng.uniform(0, 200), Y0 - rng.uniform(0, 200)
        w = rng.choice([0.5, 3, 10, 40])
        coordinates = [[[x, y], [x + w, y], [x + w, y - w], [x, y - w], [x, y]]]
    return {"type": kind, "coordinates": coordinates}


def random_geojson(rng):
    values = ["Grass", " grass ", "WATER", "", None, 1, 2, 0, -3, 1.5, 2.0, True, "3", "é", "a" * 300]
    features = []
    for _ in range(rng.randint(0, 8)):
        properties = {"cls": rng.choice(values)} if rng.random() < 0.9 else {"other": 1}
        features.append({"type": "Feature", "geometry": random_geometry(rng), "properties": properties})
    document = {"type": "FeatureCollection", "features": features}
    if rng.random() < 0.3:
        document["crs"] = {"type": "name", "properties": {"name": rng.choice(
            [f"urn:ogc:def:crs:EPSG::{EPSG}", "urn:ogc:def:crs:EPSG::4326", "EPSG:999999", "nonsense"])}}
    text = json.dumps(document)
    if rng.random() < 0.15:
        text = text[:rng.randrange(max(1, len(text)))]
    return text


@pytest.mark.hostile
def test_fuzz_label_loader(tmp_path):
    from osgeo import gdal
    rng = random.Random(60)
    raster = scene(tmp_path / "scene.tif")
    valid = open(write_labels(tmp_path / "valid.gpkg", stripe_features()), "rb").read()
    outcomes = {"read": 0, "refused": 0}
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        with open_raster(raster) as dataset:
            for case in range(LABEL_CASES):
                if case % 2:
                    path = tmp_path / f"case{case}.geojson"
                    path.write_text(random_geojson(rng))
                else:
                    path = tmp_path / f"case{case}.gpkg"
                    path.write_bytes(mutate_bytes(valid, rng))
                try:
                    labels.rasterise(str(path), "cls", dataset, rng.choice(["centre", "all_touched"]))
                    outcomes["read"] += 1
                except InputError as error:
                    assert error.parameter in ("LABELS", "CLASS_FIELD"), (case, error)
                    outcomes["refused"] += 1
                for name in os.listdir(tmp_path):
                    if name.startswith(f"case{case}."):
                        os.unlink(tmp_path / name)
    finally:
        gdal.PopErrorHandler()
    assert outcomes["read"] > 5 and outcomes["refused"] > 5, outcomes
