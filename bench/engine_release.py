"""The release table from the engine itself: hsigan:train and hsigan:classify as a user runs them, on files.

Every other accuracy script runs the engine's training functions on arrays and builds its own map (no head
refit with every pixel, the head's window 1x1: bench/smoothing.py, bench/release.py). Here each draw is a real
job: the scene (bench/scenes.py export's arrays) is written once as a GeoTIFF, its training side as a GeoPackage
of points at the pixel centres (integer field `class`); train() draws SIZE px/class (SAMPLES_PER_CLASS; 0 for
'all') and its validation blocks as it always does, with every other parameter at its default (GAN, kernel head,
SMOOTHING, refit...), then classify() writes the map and the fixed test side is scored whole
(hsigan_qgis.metrics, as bench/release.py scores). Rows: the defaults ('default'), GAN=none ('none, default
pipeline') and, to study the default's ssgan-or-none rule (bench/gan_rule.py), GAN ssgan without it ('ssgan':
train(none_first=False), the network the rule trains where it does not keep GAN none), beside the RBF-SVM and
random forest of `bench/release.py run --stages baselines` (benchmark draw).

  python bench/engine_release.py run --seeds 2090-2094 --out DIR [--methods default none] [--scenes ...] \
      [--sizes 15 50 all]     # two processes on two cores: two runs with disjoint seeds
  python bench/engine_release.py report DIR --baselines bench/TAG-baselines.json --seeds 2090-2099 \
      --json OUT.json --md OUT.md
  python bench/engine_release.py draws --seeds 2120-2219 --sizes 50 all --out DIR --json OUT.json   # each draw's
      # median class and validation pixels, without training (round 31)

run saves DIR/SCENE_SIZE_SEED_METHOD.json per draw (skipped when present): OA, AA, kappa, CPU seconds of train
and classify, and what the training chose (GAN mode, head window and weight, smoothing box, validation OA).
One torch thread per process.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
METHODS = {"default": {}, "none, default pipeline": dict(gan="none"),  # row name: TrainConfig settings
           "ssgan, default pipeline": dict(gan="ssgan")}
SHORT = {"default": "default", "none": "none, default pipeline", "ssgan": "ssgan, default pipeline"}  # --methods
FORCED = {"ssgan, default pipeline"}  # rows trained with train(none_first=False): ssgan whatever the labels
PIXEL = 30.0  # metres; any projected grid will do: the scenes' own georeferencing is not in the arrays


def scene_files(data, name, folder):
    """(GeoTIFF of the cube, GeoPackage of the training side's labelled pixel centres), written once."""
    import rasterio
    from osgeo import ogr, osr
    from rasterio.transform import from_origin

    raster, labels = (os.path.join(folder, f"{name}{ext}") for ext in (".tif", "_train.gpkg"))
    transform = from_origin(500000.0, 5800000.0, PIXEL, PIXEL)
    if not os.path.exists(raster):
        cube = np.load(os.path.join(data, f"{name}_cube.npy"))  # (rows, cols, bands)
        part = f"{raster}.{os.getpid()}.part.tif"
        with rasterio.open(part, "w", driver="GTiff", width=cube.shape[1], height=cube.shape[0],
                           count=cube.shape[2], dtype=cube.dtype, crs="EPSG:32633", transform=transform) as dst:
            dst.write(np.moveaxis(cube, 2, 0))
        os.replace(part, raster)
    if not os.path.exists(labels):
        gt, train_mask = (np.load(os.path.join(data, f"{name}_{k}.npy")) for k in ("gt", "train"))
        part = os.path.join(folder, f"part{os.getpid()}_{name}_train.gpkg")
        source = ogr.GetDriverByName("GPKG").CreateDataSource(part)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32633)
        layer = source.CreateLayer("labels", srs, ogr.wkbPoint)
        layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
        layer.StartTransaction()
        for r, c in zip(*np.nonzero(train_mask)):
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("class", int(gt[r, c]))
            x, y = transform * (c + 0.5, r + 0.5)
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
            layer.CreateFeature(feature)
        layer.CommitTransaction()
        source = None  # closes the file
        os.replace(part, labels)
    return raster, labels


def run(args):
    import rasterio
    import torch

    from hsigan_qgis.classify import classify
    from hsigan_qgis.config import ClassifyConfig, TrainConfig
    from hsigan_qgis.metrics import confusion_matrix, summarise
    from hsigan_qgis.gan import median_class
    from hsigan_qgis.train import train

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "files")
    os.makedirs(work, exist_ok=True)
    scenes = {}
    for name in args.scenes:
        gt, test_mask = (np.load(os.path.join(args.data, f"{name}_{k}.npy")) for k in ("gt", "test"))
        ids = np.unique(gt[np.load(os.path.join(args.data, f"{name}_train.npy"))])
        tr, tc = np.nonzero(test_mask)
        scenes[name] = (*scene_files(args.data, name, work), ids, tr, tc, np.searchsorted(ids, gt[tr, tc]))
    for seed in args.seeds:  # seed by seed: a run cut short leaves whole seeds
        for name, (raster, labels, ids, tr, tc, truth) in scenes.items():
            for size in args.sizes:
                for short in args.methods:
                    method = SHORT[short]
                    path = os.path.join(args.out, f"{name}_{size}_{seed}_{short}.json")
                    if os.path.exists(path):
                        continue
                    model, mapped = (os.path.join(work, f"{os.getpid()}{ext}") for ext in (".hsigan", ".tif"))
                    started = time.process_time()
                    trained = train(TrainConfig(input=raster, labels=labels, class_field="class", output_model=model,
                                                samples_per_class=0 if size == "all" else int(size), seed=seed,
                                                device="cpu", **METHODS[method]),
                                    none_first=method not in FORCED)
                    middle = time.process_time()
                    classify(ClassifyConfig(input=raster, model=model, output=mapped, device="cpu"))
                    ended = time.process_time()
                    with rasterio.open(mapped) as src:
                        predicted = np.searchsorted(ids, src.read(1)[tr, tc])
                    figures = summarise(confusion_matrix(truth, predicted, len(ids)))
                    m = trained.metadata
                    head = m.get("spectral_head") or {}
                    row = dict(scene=name, size=size, seed=seed, method=method, oa=float(figures["oa"]),
                               aa=float(figures["aa"]), kappa=float(figures["kappa"]),
                               seconds=round(middle - started, 2), classify_seconds=round(ended - middle, 2),
                               gan=(m["training"].get("gan_rule") or {}).get("chosen", m["training"]["gan"]),
                               head_window=head.get("window"), head_weight=head.get("weight"),
                               smoothing_box=m["smoothing"]["box"], validation_oa=trained.oa,
                               median_class=median_class(m["training"]["train_pixels_per_class"]),
                               train_pixels=trained.train_pixels, validation_pixels=trained.validation_pixels)
                    with open(path + ".part", "w") as f:
                        json.dump(row, f, indent=1)
                    os.replace(path + ".part", path)
                    print(json.dumps(row), flush=True)


def draw_counts(data, scene, size, seed, work):
    """(median class, validation pixels) of the draw train() makes for this scene, size and seed at its defaults
    (train.draw_from_raster: SAMPLES_PER_CLASS, the validation blocks, the gap and SEED decide it), without
    training: whether the ssgan-or-none rule applies (gan.tries_none_first) is known before any training."""
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.gan import median_class
    from hsigan_qgis.train import draw_from_raster

    os.makedirs(work, exist_ok=True)
    raster, labels = scene_files(data, scene, work)
    cfg = TrainConfig(input=raster, labels=labels, class_field="class", output_model=os.path.join(work, "unused"),
                      samples_per_class=0 if size == "all" else int(size), seed=seed, device="cpu")
    drawn, _, (train, validation), _, _ = draw_from_raster(cfg, cfg.patch_size // 2, Feedback())
    return median_class(np.bincount(train.labels, minlength=len(drawn.points.classes.ids))), len(validation)


def backfill(args):
    """Adds median_class (training pixels of the median class, gan.median_class) to run's files that lack it (runs
    before round 30's review did not record it), from draw_counts."""
    medians = {}  # (scene, size, seed): the draw's median class, made once for every method's file
    for folder in args.folders:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not name.endswith(".json") or "median_class" in (row := json.load(open(path))):
                continue
            key = (row["scene"], row["size"], row["seed"])
            if key not in medians:
                medians[key] = draw_counts(args.data, *key, os.path.join(folder, "files"))[0]
            with open(path + ".part", "w") as f:
                json.dump(dict(row, median_class=medians[key]), f, indent=1)
            os.replace(path + ".part", path)


def draws(args):
    """Prints (and writes to --json) each draw's median class and validation pixels, and whether the default's
    ssgan-or-none rule applies there (gan.many_labels): round 31 picks its check draws this way."""
    from hsigan_qgis.gan import many_labels

    work = os.path.join(args.out, "files")
    rows = []
    for seed in args.seeds:
        for scene in args.scenes:
            for size in args.sizes:
                median, validation = draw_counts(args.data, scene, size, seed, work)
                row = dict(scene=scene, size=size, seed=seed, median_class=median, validation_pixels=validation,
                           applies=many_labels(median, validation))
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json + ".part", "w") as f:
            json.dump(rows, f, indent=1)
        os.replace(args.json + ".part", args.json)


def rescored(rows, threshold):
    """rows with each default draw that trained ssgan where the engine's ssgan-or-none rule applies (gan.many_labels,
    through gan_rule.applies) replaced by the same draw's GAN none row where that row's head weight is at least
    threshold (gan_rule.threshold): the default at a lower gan.NONE_IF_HEAD, or (round 31) with the rule applying in
    more draws, exactly; its CPU seconds those of the none job alone (the default's adds the choice between the
    two)."""
    from gan_rule import applies, threshold as rule_at

    keep = rule_at(threshold)
    none = {(r["scene"], r["size"], r["seed"]): r for r in rows if r["method"] == "none, default pipeline"}
    out = []
    for r in rows:
        twin = none.get((r["scene"], r["size"], r["seed"]))
        if r["method"] == "default" and r["gan"] == "ssgan" and applies(twin):
            chosen, _ = keep(twin, r)
            r = chosen if chosen is r else dict(chosen, method="default", gan="none")
        out.append(r)
    return out


def report(args):
    """The table (bench/release.py's) from run's files and the baselines' JSON, for every scene, size and seed
    asked for; exits naming what is missing."""
    import release as R
    from hsigan_qgis.gan import MANY_LABELS

    wanted = [(s, z, k) for s in args.scenes for z in args.sizes for k in args.seeds]
    rows, missing = [], []
    for scene, size, seed in wanted:
        for short in args.methods:
            path = os.path.join(args.folders[0], f"{scene}_{size}_{seed}_{short}.json")
            if os.path.exists(path):
                rows.append(json.load(open(path)))
            else:
                missing.append(path)
    runs = {(r["scene"], r["size"], r["seed"], r["method"]): r for r in json.load(open(args.baselines))["runs"]}
    for method in ("svm", "rf"):
        for key in wanted:
            if (*key, method) in runs:
                r = runs[(*key, method)]
                rows.append({k: r[k] for k in ("scene", "size", "seed", "method", "oa", "aa", "kappa", "seconds")})
            else:
                missing.append(f"{args.baselines}: {method} {' '.join(map(str, key))}")
    if missing:
        sys.exit(f"report: {len(missing)} draw(s) missing:\n  " + "\n  ".join(missing))
    if args.none_if_head is not None:
        rows = rescored(rows, args.none_if_head)
    label = {"default": "**default** (hsigan:train and hsigan:classify at their defaults, on files)",
             "none, default pipeline": "GAN=none, every other parameter at its default",
             "ssgan, default pipeline": "GAN=ssgan whatever the labels (no GAN none first), every other at its default",
             "svm": R.LABEL["svm"], "rf": R.LABEL["rf"]}
    order = [SHORT[m] for m in args.methods] + ["svm", "rf"]
    text = R.table(rows, args.seeds, order, label, kappa_std=True)
    chose = {}
    for r in rows:
        if r["method"] == "default":
            cell = chose.setdefault(f"{r['scene']} {r['size']}", dict(gan={}, smoothing_box={}, head_window={}))
            for k in cell:
                cell[k][str(r[k])] = cell[k].get(str(r[k]), 0) + 1
    text += "\n\n**What the default's training chose** (draws per choice)\n\n| scene, size | GAN | smoothing box | " \
            "head window |\n|---|---|---|---|\n" + "\n".join(
                f"| {k} | {v['gan']} | {v['smoothing_box']} | {v['head_window']} |" for k, v in chose.items())
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(seeds=args.seeds, folder=args.folders[0], baselines=args.baselines, rows=rows), f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write("# Release table from the engine itself (`python bench/engine_release.py report`)\n\n"
                    "Each network row is hsigan:train then hsigan:classify on files, every parameter at its default "
                    "but SAMPLES_PER_CLASS (15, 50, or 0 for every pixel), SEED and, on the GAN none row, GAN; the "
                    "test side scored whole. Baselines: bench/release.py's (benchmark draw). "
                    + (f"The default row is re-scored for the ssgan-or-none rule at head weight {args.none_if_head:g}: "
                       "where the run's default trained ssgan, the rule applies (gan.many_labels: validation pixels "
                       f"and a median class of {MANY_LABELS} px or more) and GAN none's head weight "
                       "reaches it, the draw's GAN none row stands in (bench/gan_rule.py; the CPU seconds of those "
                       "draws are GAN none's alone). " if args.none_if_head is not None else "")
                    + f"Sources: {args.folders[0]}, {args.baselines}.\n\n" + text + "\n")


def main(argv=None):
    import scenes as S
    from smoothing import seeds_of

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report", "backfill", "draws"])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(HERE), ".dev", "accuracy", "data"))
    parser.add_argument("--scenes", nargs="+", default=S.SCENES)
    parser.add_argument("--sizes", nargs="+", default=["15", "50", "all"])
    parser.add_argument("--seeds", type=seeds_of)
    parser.add_argument("--methods", nargs="+", choices=list(SHORT), default=["default", "none"])
    parser.add_argument("--out")
    parser.add_argument("--baselines")
    parser.add_argument("--json")
    parser.add_argument("--md")
    parser.add_argument("--none-if-head", type=float, help="report: the default row re-scored for this "
                        "gan.NONE_IF_HEAD, from the draws' GAN none rows (exact where it is lower than the run's)")
    args = parser.parse_args(argv)
    if args.command != "backfill" and not args.seeds:
        parser.error(f"{args.command} needs --seeds")
    if args.command in ("run", "draws") and not args.out:
        parser.error(f"{args.command} needs --out")
    if args.command == "report" and not (args.folders and args.baselines):
        parser.error("report needs a run folder and --baselines")
    if args.command == "backfill" and not args.folders:
        parser.error("backfill needs run folders")
    {"run": run, "report": report, "backfill": backfill, "draws": draws}[args.command](args)


if __name__ == "__main__":
    main()
