"""Accuracy benchmark on Indian Pines with a spatially disjoint train/test split.

Data: /work/shared/data/indian_pines (145 x 145 x 200, 16 classes). The cube is written as a GeoTIFF with
a georeference of our own (UTM 16N, EPSG:32616, 20 m pixels, origin 500000 E / 4500000 N), and labels as
GeoPackage points (one point per labelled pixel centre, integer field `class_id`).

Split (spatially disjoint, `disjoint_split`):
  1. The scene is cut into 16 x 16 px blocks in a checkerboard: "white" blocks train, "black" blocks test.
  2. A class left with under 10 % of its pixels on either side (after step 3) -- the small compact
     fields: alfalfa, grass-pasture-mowed, oats, stone-steel-towers -- is instead cut across the longer
     axis of its extent: one end trains, the other end tests, with a band of GAP px between them dropped;
     test pixels of other (not re-cut) classes within GAP px of such a training end are dropped too.
  3. Gap band: every training pixel within GAP = 4 px (Chebyshev distance, = radius of a 9 x 9 patch) of
     a test pixel is dropped, so no training patch of side <= 9 ever covers a test pixel.
  Training draws of 15 / 50 pixels per class (or all training pixels) are made per seed from the training
  side (stratified, seeded); the test side is fixed and used whole. The split is checked by tests.

Methods (all nets through the engine's public path: train.train -> classify.classify ->
assess.assess on the whole raster, scored on the test points):
  svm    RBF-SVM on the (z-scored) spectra of the same training pixels, C/gamma by 3-fold CV
         (scikit-learn; benchmark-only dependency).
  none   spectral-spatial classifier, no GAN (gan='none').
  wgan   classifier + conditional WGAN-GP synthetic patches (gan='wgan').
  ssgan  semi-supervised GAN; the discriminator also sees the raster's unlabelled pixels (gan='ssgan').
         The test pixels are among those unlabelled pixels (their spectra, never their labels): this is
         the transductive setting a QGIS user has (the whole scene is at hand).
  X+balanced  the same with class_balanced=True (labelled pixels drawn so that every class is seen
         equally often); the plain names run with class_balanced=False.
Every net uses the TrainConfig defaults except gan, samples (given as the label file) and
validation_fraction=0 (the benchmark has its own test set); --epochs-all/--gan-steps-all may lower the
cost of the 'all pixels' runs, and RESULTS-indian-pines.md records what ran (bench/scenes.py is the multi-scene
benchmark that now chooses defaults; its bench/RESULTS.md).

Usage: .venv/bin/python bench/accuracy.py [--seeds 0 1 2 3 4] [--sizes 15 50 all] [--methods svm none
none+balanced wgan ssgan ssgan+balanced] [--quick] [--out bench]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads crawl on a busy 2-core box
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(ROOT, "..", "shared", "data", "indian_pines")
BLOCK, GAP = 16, 4
METHODS = ["svm", "none", "none+balanced", "wgan", "ssgan", "ssgan+balanced"]  # table order
CRS, PIXEL, ORIGIN = "EPSG:32616", 20.0, (500000.0, 4500000.0)


def load():
    cube = np.load(os.path.join(DATA, "Indian_pines_corrected.npy"))
    gt = np.load(os.path.join(DATA, "Indian_pines_gt.npy")).astype(np.int64)
    return cube, gt


def disjoint_split(gt, block=BLOCK, gap=GAP):
    """(train mask, test mask) over gt (0 = unlabelled); see the module docstring."""
    from scipy import ndimage

    h, w = gt.shape
    black = ((np.arange(h)[:, None] // block + np.arange(w)[None, :] // block) % 2).astype(bool)
    labelled = gt > 0
    test, train = labelled & black, labelled & ~black
    square = np.ones((2 * gap + 1, 2 * gap + 1), bool)

    def gapped(train, test):
        return train & ~ndimage.binary_dilation(test, structure=square)

    ends, recut = np.zeros_like(labelled), np.zeros_like(labelled)  # training ends / pixels of re-cut classes
    for c in np.unique(gt[labelled]):
        rows, cols = np.nonzero(gt == c)
        kept = gapped(train, test)
        if min(kept[rows, cols].sum(), test[rows, cols].sum()) >= 0.1 * len(rows):
            continue
        # Too few on one side: cut the class across its longer axis, leaving a band of `gap` px between.
        along = rows if np.ptp(rows) >= np.ptp(cols) else cols
        cut = (along.min() + along.max() - gap - 1) // 2
        train[rows, cols] = along <= cut
        test[rows, cols] = along >= cut + gap + 1
        ends[rows, cols], recut[rows, cols] = along <= cut, True
    test &= ~(ndimage.binary_dilation(ends, structure=square) & ~recut)  # their gap comes off the test side
    return gapped(train, test), test


def draw(train_mask, gt, per_class, seed):
    """Seeded stratified draw of per_class training pixels (0 = all): (rows, cols)."""
    rng = np.random.default_rng(1000 + seed)
    rows, cols = np.nonzero(train_mask)
    if per_class <= 0:
        return rows, cols
    keep = []
    for c in np.unique(gt[rows, cols]):
        where = np.flatnonzero(gt[rows, cols] == c)
        keep.append(rng.permutation(where)[:per_class])
    keep = np.sort(np.concatenate(keep))
    return rows[keep], cols[keep]


def write_raster(path, cube):
    import rasterio
    from rasterio.transform import from_origin

    data = np.ascontiguousarray(cube.transpose(2, 0, 1))
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=CRS,
                       transform=from_origin(ORIGIN[0], ORIGIN[1], PIXEL, PIXEL), interleave="pixel") as dst:
        dst.write(data)
    return path


def write_points(path, rows, cols, classes):
    """One point per pixel centre, field class_id (int)."""
    from osgeo import ogr, osr

    if os.path.exists(path):
        os.remove(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32616)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer("labels", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    layer.StartTransaction()
    for r, c, k in zip(rows, cols, classes):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class_id", int(k))
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    source = None
    return path


def summary_of(reference, predicted):
    from hsigan_qgis.metrics import confusion_matrix, summarise

    ids = np.unique(reference)
    index = {c: i for i, c in enumerate(ids)}
    other = len(ids)
    s = summarise(confusion_matrix([index[c] for c in reference], [index.get(p, other) for p in predicted],
                                   other + 1))
    return dict(oa=float(s["oa"]), aa=float(np.nanmean(s["recall"][:other]) * 100), kappa=float(s["kappa"]))


def run_svm(cube, gt, rows, cols, test_mask, seed):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    started = time.perf_counter()
    x, y = cube[rows, cols].astype(np.float64), gt[rows, cols]
    folds = min(3, int(np.bincount(y)[np.bincount(y) > 0].min()))
    grid = {"svc__C": [1, 10, 100, 1000], "svc__gamma": ["scale", 0.01, 0.001]}
    pipe = make_pipeline(StandardScaler(), SVC(kernel="rbf"))
    if folds >= 2:
        pipe = GridSearchCV(pipe, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), n_jobs=1)
    pipe.fit(x, y)
    seconds = time.perf_counter() - started
    tr, tc = np.nonzero(test_mask)
    out = summary_of(gt[tr, tc], pipe.predict(cube[tr, tc].astype(np.float64)))
    out.update(seconds=seconds, params=getattr(pipe, "best_params_", {}))
    return out


def run_net(method, raster, train_gpkg, test_gpkg, work, seed, overrides):
    from hsigan_qgis.assess import assess
    from hsigan_qgis.config import AssessConfig, ClassifyConfig, TrainConfig
    from hsigan_qgis.classify import classify
    from hsigan_qgis.train import train

    model = os.path.join(work, f"{method.replace('+', '_')}_{seed}.hsigan")
    mapped = os.path.join(work, f"{method.replace('+', '_')}_{seed}.tif")
    for p in (model, mapped):
        if os.path.exists(p):
            os.remove(p)
    gan, _, variant = method.partition("+")  # 'ssgan+balanced': class_balanced=True
    cfg = TrainConfig(input=raster, labels=train_gpkg, class_field="class_id", output_model=model, gan=gan,
                      seed=seed, validation_fraction=0.0, device="cpu", class_balanced=variant == "balanced",
                      **overrides)
    result = train(cfg)
    classify(ClassifyConfig(input=raster, model=model, output=mapped, device="cpu"))
    scores = assess(AssessConfig(input=mapped, reference=test_gpkg, class_field="class_id"))
    return dict(oa=scores.oa, aa=scores.aa, kappa=scores.kappa, seconds=result.seconds,
                config=dict({k: getattr(cfg, k) for k in ("patch_size", "epochs", "synthetic_ratio", "batch_size",
                                                           "learning_rate", "class_balanced")},
                            gan_steps=result.metadata["training"]["gan_steps"]))  # resolved, not 0 = auto


def fmt(values, digits=2):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def table(results):
    lines = ["| pixels/class | method | runs | OA % | AA % | kappa | train s |", "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["size"], r["method"]) for r in results},
                  key=lambda k: (k[0] == "all", int(k[0]) if k[0] != "all" else 0,
                                 METHODS.index(k[1])))
    for size, method in keys:
        rs = [r for r in results if r["size"] == size and r["method"] == method]
        lines.append(f"| {size} | {method} | {len(rs)} (seeds {','.join(str(r['seed']) for r in rs)}) | "
                     f"{fmt([r['oa'] for r in rs])} | {fmt([r['aa'] for r in rs])} | "
                     f"{fmt([r['kappa'] for r in rs], 4)} | {fmt([r['seconds'] for r in rs], 1)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sizes", nargs="+", default=["15", "50", "all"])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--quick", action="store_true", help="tiny settings to check the pipeline (seconds)")
    parser.add_argument("--epochs-all", type=int, default=0, help="epochs for 'all' runs (0 = default)")
    parser.add_argument("--gan-steps-all", type=int, default=0, help="GAN steps for 'all' runs (0 = default)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 lets two runs share 2 cores)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench"))
    parser.add_argument("--json", default="", help="raw results file (default OUT/results.json)")
    parser.add_argument("--append", action="store_true", help="add to an existing JSON instead of replacing it")
    parser.add_argument("--merge", nargs="+", default=[], help="only merge these raw JSON files into OUT")
    args = parser.parse_args(argv)
    if args.merge:
        runs = [r for path in args.merge for r in json.load(open(path))["runs"]]
        split = json.load(open(args.merge[0]))["split"]
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(dict(split=split, runs=runs), f, indent=1)
        text = table(runs)
        print(text)
        write_results(os.path.join(args.out, "RESULTS-indian-pines.md"), text, runs, split["train_test_per_class"], args)
        return runs
    import torch
    torch.set_num_threads(max(1, min(args.threads, os.cpu_count() or 1)))

    cube, gt = load()
    train_mask, test_mask = disjoint_split(gt)
    per_class = [(int((gt[train_mask] == c).sum()), int((gt[test_mask] == c).sum())) for c in range(1, 17)]
    print("train/test pixels per class:", per_class)
    json_path = args.json or os.path.join(args.out, "results.json")
    results = []
    if args.append and os.path.exists(json_path):
        results = json.load(open(json_path))["runs"]
    work = tempfile.mkdtemp(prefix="hsigan_bench_")
    raster = write_raster(os.path.join(work, "indian_pines.tif"), cube)
    tr, tc = np.nonzero(test_mask)
    test_gpkg = write_points(os.path.join(work, "test.gpkg"), tr, tc, gt[tr, tc])
    for size in args.sizes:
        n = 0 if size == "all" else int(size)
        overrides = {}
        if args.quick:
            overrides = dict(epochs=2, gan_steps=5)
        elif size == "all":
            if args.epochs_all:
                overrides["epochs"] = args.epochs_all
            if args.gan_steps_all:
                overrides["gan_steps"] = args.gan_steps_all
        for seed in args.seeds:
            rows, cols = draw(train_mask, gt, n, seed)
            train_gpkg = write_points(os.path.join(work, f"train_{size}_{seed}.gpkg"), rows, cols, gt[rows, cols])
            for method in args.methods:
                if method == "svm":
                    out = run_svm(cube, gt, rows, cols, test_mask, seed)
                else:
                    out = run_net(method, raster, train_gpkg, test_gpkg, work, seed, overrides)
                out.update(size=size, method=method, seed=seed, train_pixels=int(len(rows)))
                results = [r for r in results if (r["size"], r["method"], r["seed"]) != (size, method, seed)]
                results.append(out)
                print(f"{size:>4} {method:>5} seed {seed}: OA {out['oa']:.2f} AA {out['aa']:.2f} "
                      f"kappa {out['kappa']:.4f} ({out['seconds']:.1f} s)", flush=True)
                os.makedirs(os.path.dirname(json_path) or ".", exist_ok=True)
                with open(json_path, "w") as f:
                    json.dump(dict(split=dict(block=BLOCK, gap=GAP, train_test_per_class=per_class),
                                   runs=results), f, indent=1)
    text = table(results)
    print(text)
    if not args.quick:
        write_results(os.path.join(args.out, "RESULTS-indian-pines.md"), text, results, per_class, args)
    return results


def write_results(path, text, results, per_class, args):
    """RESULTS-indian-pines.md: the design (from this docstring), the table, the settings that ran; a hand-written
    'Findings' section already in the file is kept."""
    import torch
    from hsigan_qgis.config import TrainConfig

    findings = ""
    if os.path.exists(path):
        old = open(path).read()
        if "## Findings" in old:
            findings = old[old.index("## Findings"):]
    defaults = {k: getattr(TrainConfig, k) for k in ("patch_size", "epochs", "gan", "class_balanced",
                                                      "synthetic_ratio", "gan_steps", "batch_size", "learning_rate")}
    ran = sorted({(r["size"], r["method"], json.dumps(r.get("config", {}), sort_keys=True)) for r in results})
    lines = ["# Indian Pines accuracy benchmark (spatially disjoint split)", "",
             "Written by `bench/accuracy.py` (raw runs in `results.json`). Mean ± std over the seeds listed; "
             "OA/AA in %, kappa as a fraction, train s = wall time of `train()` on a 2-core CPU (threads and "
             "machine load when it ran: see Findings).", "",
             "## Design", "", "```", __doc__.strip(), "```", "",
             f"Training / test pixels per class (classes 1-16): {per_class}; "
             f"{sum(a for a, _ in per_class)} / {sum(b for _, b in per_class)} in all.", "",
             "## Results", "", text, "",
             f"TrainConfig defaults when this ran: `{json.dumps(defaults)}`; torch {torch.__version__}.", "",
             "Settings per (size, method) that ran:", ""]
    lines += [f"- {size} {method}: `{config}`" for size, method, config in ran]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n\n" + findings)


if __name__ == "__main__":
    main()
