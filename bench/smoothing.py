"""Round 27 (bench/RESULTS.md): the default pipeline's fused class probabilities averaged over a k x k box
(SMOOTHING), on bench/scenes.py's scenes and engine draw.

  python bench/smoothing.py run --seeds 0-9 --out FOLDER [--pipeline none] [--scenes ...] [--sizes 15 50 all]
  python bench/smoothing.py report FOLDER [FOLDER ...] --json OUT.json --md OUT.md
  python bench/smoothing.py release --default FOLDER --none FOLDER --baselines JSON --seeds 2060-2069 \
      [--auto-boxes 1,3,5] --json OUT.json --md OUT.md
  python bench/smoothing.py cost --json bench/RESULTS-smoothing-cost.json

run: per scene, size and seed, the default pipeline as hsigan:train runs it (GAN ssgan; with a median class
of gan.MANY_LABELS training pixels or more (gan.many_labels) GAN none first, kept at an automatic head weight of
gan.NONE_IF_HEAD or more), the network's and the kernel head's softmax fused at
head_choice.automatic_head_weight (the head's window 1x1 and no refit with every pixel: the bench's map, not
exactly the engine's), then averaged over boxes
of 1 (none), 3, 5 and 7 px (scipy.ndimage.uniform_filter, mode 'reflect'; these scenes have no nodata). Saves
FOLDER/SCENE_SIZE_SEED.npz: the predictions at the validation and test pixels for each box, the labels, the
GAN mode kept and the head weight. Two processes on two cores: two runs with disjoint --seeds. `--pipeline none`:
GAN none's pipeline always (none:1000 fused with its head, as hsigan:train ships GAN=none), saved alike (mode
'none').

report: per cell, the test OA of each box, of `smooth-auto` (smoothing_choice.automatic_box on the validation
predictions of boxes 1, 3 and 5: the engine's rule) and of the best validation OA among 1, 3 and 5 (for
information), against the plain map; the mean over cells.

release: bench/release.py's tables (scored as it scores, hsigan_qgis.metrics) with SMOOTHING=auto (its candidate
boxes: the engine's, or --auto-boxes; the table on seeds 2060-2069 was made with 1,3,5). Rows: the
default pipeline with smooth-auto (a `run` folder, --default), the same draws without smoothing (their box 1),
GAN none's pipeline with smooth-auto (a `run --pipeline none` folder, --none), and the RBF-SVM and random forest
on the benchmark draw (--baselines: the JSON of `bench/release.py run --stages baselines`); OA, AA, kappa (mean
± std over --seeds) per scene and size, the mean of scenes, the default with smooth-auto minus the SVM and minus
no smoothing, and issue 12's targets (with every size). Every scene, size and seed asked for must be in every
source (else it names the missing ones and stops); other seeds are ignored. The nets' map is `run`'s (the
head's window 1x1, no refit), so the row without smoothing is close to bench/RESULTS-release.md's default, not
equal to it. The full table on two cores, two processes of one torch thread (disjoint seeds, then the other
pipeline; the baselines last, a few minutes):
  python bench/smoothing.py run --seeds 2060-2064 --out D && python bench/smoothing.py run --seeds 2060-2064 \
      --out N --pipeline none      # and at once the same with --seeds 2065-2069
  python bench/release.py run --stages baselines --tag release28 --data .dev/accuracy/data --seeds 2060 ... 2069
  python bench/smoothing.py release --default D --none N --baselines bench/release28-baselines.json \
      --seeds 2060-2069 --json bench/RESULTS-release-smoothing.json --md bench/RESULTS-release-smoothing.md

cost: classify's CPU time without and with a 5x5 box (the same network), and what the automatic choice adds
to a training, on this machine."""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
BOXES = (1, 3, 5, 7)
AUTO_BOXES = (1, 3, 5)  # round 27's smooth-auto candidates (report); release takes --auto-boxes


def seeds_of(text):
    """'0-9' or '0,2,4' (or both: '0-3,8')."""
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def run(args):
    import torch
    from scipy import ndimage

    import scenes as S
    from hsigan_qgis.gan import NONE_IF_HEAD, many_labels, median_class
    from hsigan_qgis.head_choice import automatic_head_weight
    from hsigan_qgis.predict import dense_logits, prepare_model

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for name in args.scenes:
        cube = np.load(os.path.join(args.data, f"{name}_cube.npy"))
        gt, train_mask, test_mask = (np.load(os.path.join(args.data, f"{name}_{k}.npy"))
                                     for k in ("gt", "train", "test"))
        ids = np.unique(gt[train_mask])
        tr, tc = np.nonzero(test_mask)
        cache = {}

        def blocks(r):
            if r not in cache:
                cache[r] = S.scene_block(cube, r, torch.device("cpu"))
            return cache[r]
        for size in args.sizes:
            for seed in args.seeds:
                path = os.path.join(args.out, f"{name}_{size}_{seed}.npz")
                if os.path.exists(path):
                    continue
                pixels, val = S.engine_draw(size, seed, gt, train_mask, ids)
                unlabelled = np.ones(gt.shape, bool)
                unlabelled[pixels.rows, pixels.cols] = False
                started = time.process_time()

                def fused_of(method):
                    model, _, block = S.train_net(method, blocks, pixels, unlabelled, len(ids), seed, False)
                    with torch.no_grad():
                        net = torch.softmax(dense_logits(prepare_model(model, "cpu"), block[None]), 1)[0].numpy()
                        head = S.fit_head(block, pixels, S.PATCH // 2, len(ids), seed)
                        kernel = torch.softmax(head(block[None]), 1)[0].numpy()
                    w, _ = automatic_head_weight(net[:, val.rows, val.cols].T, kernel[:, val.rows, val.cols].T,
                                                 val.labels)
                    return (1 - w) * net + w * kernel, w
                if args.pipeline == "none":  # GAN none's pipeline, always
                    mode = "none"
                    fused, weight = fused_of("none:1000")
                else:
                    mode = "ssgan"
                    if many_labels(median_class(np.bincount(pixels.labels, minlength=len(ids))), len(val)):
                        fused, weight = fused_of("none:1000")
                        if weight >= NONE_IF_HEAD:
                            mode = "none"
                    if mode == "ssgan":
                        fused, weight = fused_of("ssgan")
                out = dict(mode=mode, weight=weight, val_labels=val.labels, test_gt=gt[tr, tc], ids=ids,
                           seconds=time.process_time() - started)
                for k in BOXES:
                    smoothed = fused if k == 1 else ndimage.uniform_filter(fused, size=(1, k, k), mode="reflect")
                    predicted = smoothed.argmax(0)
                    out[f"val_{k}"], out[f"test_{k}"] = predicted[val.rows, val.cols], ids[predicted[tr, tc]]
                np.savez_compressed(path, **out)
                oa = {k: round(100 * float((out[f"test_{k}"] == out["test_gt"]).mean()), 2) for k in BOXES}
                print(name, size, seed, mode, weight, oa, round(out["seconds"], 1), flush=True)


def rows_of(folders):
    """One row per saved draw: scene, size, seed, test OA per box, of smooth-auto and of the best validation OA."""
    from hsigan_qgis.smoothing_choice import automatic_box

    rows = []
    for folder in folders:
        for file in sorted(os.listdir(folder)):
            if not file.endswith(".npz"):
                continue
            scene, size, seed = file[:-4].rsplit("_", 2)
            d = np.load(os.path.join(folder, file))
            oa = {k: 100 * float((d[f"test_{k}"] == d["test_gt"]).mean()) for k in BOXES}
            val = {k: d[f"val_{k}"] for k in AUTO_BOXES}
            auto, _ = automatic_box(val, d["val_labels"])
            val_oa = {k: float((v == d["val_labels"]).mean()) if len(v) else 0.0 for k, v in val.items()}
            best = max(AUTO_BOXES, key=lambda k: (val_oa[k], -k))
            rows.append(dict(scene=scene, size=size, seed=int(seed), mode=str(d["mode"]), **{f"box{k}": oa[k] for k in BOXES},
                             auto=oa[auto], auto_box=int(auto), best_val=oa[best], best_val_box=int(best)))
    return rows


def report(args):
    rows = rows_of(args.folders)
    keys = [f"box{k}" for k in BOXES] + ["auto", "best_val"]
    cells = sorted({(r["size"], r["scene"]) for r in rows}, key=lambda c: (["15", "50", "all"].index(c[0]), c[1]))
    lines = ["| size | scene | seeds | no smoothing | 3x3 | 5x5 | 7x7 | **smooth-auto** (gain) | draws smoothed "
             "(3x3 / 5x5) | best validation OA of 1/3/5 |", "|---|---|---|---|---|---|---|---|---|---|"]
    means, table = {k: [] for k in keys}, []
    for size, scene in cells:
        rs = [r for r in rows if (r["scene"], r["size"]) == (scene, size)]
        m = {k: float(np.mean([r[k] for r in rs])) for k in keys}
        for k in keys:
            means[k].append(m[k])
        n3, n5 = (sum(r["auto_box"] == b for r in rs) for b in (3, 5))
        table.append(dict(scene=scene, size=size, seeds=sorted(r["seed"] for r in rs), **m, smoothed_3=n3, smoothed_5=n5))
        lines.append(f"| {size} | {scene} | {len(rs)} | {m['box1']:.2f} | {m['box3']:.2f} | {m['box5']:.2f} | "
                     f"{m['box7']:.2f} | {m['auto']:.2f} ({m['auto'] - m['box1']:+.2f}) | {n3} / {n5} | "
                     f"{m['best_val']:.2f} ({m['best_val'] - m['box1']:+.2f}) |")
    gains = [a - p for a, p in zip(means["auto"], means["box1"])]
    summary = dict(mean={k: float(np.mean(v)) for k, v in means.items()}, mean_gain=float(np.mean(gains)),
                   worst_cell_gain=float(min(gains)) if gains else None)
    lines.append(f"| mean of {len(cells)} cells | | | {summary['mean']['box1']:.2f} | {summary['mean']['box3']:.2f} | "
                 f"{summary['mean']['box5']:.2f} | {summary['mean']['box7']:.2f} | {summary['mean']['auto']:.2f} "
                 f"({summary['mean_gain']:+.2f}) | | {summary['mean']['best_val']:.2f} |")
    text = "\n".join(lines)
    print(text)
    print(f"smooth-auto: mean gain {summary['mean_gain']:+.3f}, worst cell {summary['worst_cell_gain']:+.2f}")
    if args.json:
        json.dump(dict(cells=table, summary=summary, rows=rows), open(args.json, "w"), indent=1)
    if args.md:
        open(args.md, "w").write(text + "\n")


RELEASE = ["default", "default, no smoothing", "none, default pipeline", "svm", "rf"]  # release's rows, in order


def release_rows(args):
    """release's rows (scene, size, seed, method, oa, aa, kappa, seconds) of every scene, size and seed asked for;
    exits naming the draws a source lacks."""
    from hsigan_qgis.metrics import confusion_matrix, summarise
    from hsigan_qgis.smoothing_choice import automatic_box

    wanted = [(s, z, k) for s in args.scenes for z in args.sizes for k in args.seeds]
    rows, missing = [], []
    sources = ((args.default, ("default", "default, no smoothing")), (args.none, ("none, default pipeline",)))
    for folder, methods in sources:
        for scene, size, seed in wanted:
            path = os.path.join(folder, f"{scene}_{size}_{seed}.npz")
            if not os.path.exists(path):
                missing.append(path)
                continue
            d = np.load(path)
            if folder == args.none and str(d["mode"]) != "none":
                sys.exit(f"release: {path} is not from `run --pipeline none` (mode {d['mode']})")
            auto, _ = automatic_box({k: d[f"val_{k}"] for k in args.auto_boxes}, d["val_labels"])
            truth = np.searchsorted(d["ids"], d["test_gt"])
            for method in methods:
                box = 1 if method.endswith("no smoothing") else auto
                predicted = np.searchsorted(d["ids"], d[f"test_{box}"])
                figures = summarise(confusion_matrix(truth, predicted, len(d["ids"])))
                rows.append(dict(scene=scene, size=size, seed=seed, method=method, oa=figures["oa"],
                                 aa=figures["aa"], kappa=figures["kappa"], seconds=float(d["seconds"]), box=int(box),
                                 mode=str(d["mode"])))
    runs = {(r["scene"], r["size"], r["seed"], r["method"]): r for r in json.load(open(args.baselines))["runs"]}
    for method in ("svm", "rf"):
        for key in wanted:
            if (*key, method) not in runs:
                missing.append(f"{args.baselines}: {method} {' '.join(map(str, key))}")
                continue
            r = runs[(*key, method)]
            rows.append({k: r[k] for k in ("scene", "size", "seed", "method", "oa", "aa", "kappa", "seconds")})
    if missing:
        sys.exit(f"release: {len(missing)} draw(s) missing:\n  " + "\n  ".join(missing))
    return rows


def release(args):
    """The release table with SMOOTHING=auto (module docstring), from release_rows with bench/release.py's table."""
    import release as R
    import scenes as S

    rows = release_rows(args)
    from hsigan_qgis.gan import NONE_IF_HEAD

    label = {"default": f"**default, SMOOTHING=auto** (GAN ssgan, or GAN none where its head weight reaches "
                        f"{NONE_IF_HEAD:g} with many px/class: gan.many_labels; kernel head automatic; box: "
                        "smoothing_choice.automatic_box)",
             "default, no smoothing": "default without smoothing (the previous default)",
             "none, default pipeline": "GAN none + kernel head, automatic, SMOOTHING=auto",
             "svm": R.LABEL["svm"], "rf": R.LABEL["rf"]}
    text = R.table(rows, args.seeds, RELEASE, label, kappa_std=True)
    by = {}
    for r in rows:
        by.setdefault((r["scene"], r["size"], r["method"]), []).append(r)
    cells = {"|".join(k): {f: [float(np.mean([r[f] for r in rs])), float(np.std([r[f] for r in rs]))]
                           for f in ("oa", "aa", "kappa")} for k, rs in by.items()}
    present = [s for s in S.SCENES if s in args.scenes]
    sizes = [z for z in ["15", "50", "all"] if z in args.sizes]
    lines = ["", "", "**Default with smooth-auto minus the SVM and minus no smoothing** (OA points, mean of seeds)",
             "", "| size | minus | " + " | ".join(present) + " | mean of scenes |",
             "|---|---|" + "---|" * (len(present) + 1)]
    differences = {}
    for z in sizes:
        for other, name in (("svm", "SVM"), ("default, no smoothing", "no smoothing")):
            d = [cells[f"{s}|{z}|default"]["oa"][0] - cells[f"{s}|{z}|{other}"]["oa"][0] for s in present]
            differences[f"{z}|{other}"] = dict(zip(present, d), mean=float(np.mean(d)))
            lines.append(f"| {z} | {name} | " + " | ".join(f"{v:+.2f}" for v in d) + f" | {np.mean(d):+.2f} |")
    text += "\n".join(lines)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(seeds=args.seeds, default=args.default, none=args.none, baselines=args.baselines,
                           cells=cells, differences=differences, rows=rows), f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write("# Release table with SMOOTHING=auto (`python bench/smoothing.py release`)\n\n"
                    "Rows: the default pipeline with smooth-auto (the new default), the same draws without "
                    "smoothing (the previous default), GAN none's pipeline with smooth-auto, and the classical "
                    "baselines (benchmark draw). The nets: bench/smoothing.py run's map (the head's window 1x1, no "
                    "refit with every pixel), so the row without smoothing is close to bench/RESULTS-release.md's "
                    f"default, not equal to it. smooth-auto's candidate boxes: {', '.join(map(str, args.auto_boxes))}. "
                    f"Sources: {args.default}, {args.none}, {args.baselines}.\n\n"
                    + text + "\n")


def cost(args):
    """classify's CPU time with no smoothing and with 5x5, the same network (seed, pixels), on a 384 x 384 x
    204-band tiled GeoTIFF (the Salinas-A sample tiled 5 x 5), one torch thread, alternating runs; and the
    training time the automatic choice takes on the sample (validation_predictions)."""
    import cProfile
    import pstats
    import tempfile

    import rasterio
    import torch

    from hsigan_qgis.classify import classify
    from hsigan_qgis.config import ClassifyConfig, TrainConfig
    from hsigan_qgis.train import train

    torch.set_num_threads(1)
    root, folder = os.path.dirname(HERE), tempfile.mkdtemp()
    raster, labels = (os.path.join(root, "sample_data", f) for f in ("salinas_a.tif", "salinas_a_train.gpkg"))
    with rasterio.open(raster) as src:
        profile, data = src.profile, src.read()
    big = os.path.join(folder, "big.tif")
    with rasterio.open(big, "w", **dict(profile, height=384, width=384, tiled=True, blockxsize=256,
                                        blockysize=256)) as dst:
        dst.write(np.tile(data, (1, 5, 5))[:, :384, :384])
    settings = dict(input=raster, labels=labels, class_field="class_name", samples_per_class=15, gan="none",
                    epochs=8, seed=0)
    models = {s: os.path.join(folder, f"{s}.hsigan") for s in ("off", "5x5")}
    for s, path in models.items():
        train(TrainConfig(output_model=path, smoothing=s, **settings))
    seconds = {s: [] for s in models}
    for repeat in range(args.repeats):
        for s, path in models.items():
            started = time.process_time()
            classify(ClassifyConfig(input=big, model=path, output=os.path.join(folder, f"{s}{repeat}.tif"), device="cpu"))
            seconds[s].append(round(time.process_time() - started, 3))
    median = {s: float(np.median(v)) for s, v in seconds.items()}
    profile_file = os.path.join(folder, "train.prof")
    cProfile.runctx("train(TrainConfig(output_model=os.path.join(folder, 'auto.hsigan'), smoothing='auto', "
                    "**settings))", globals(), dict(locals(), train=train, TrainConfig=TrainConfig), profile_file)
    stats = pstats.Stats(profile_file).stats
    choice = next(v[3] for k, v in stats.items() if k[2] == "validation_predictions")
    whole = next(v[3] for k, v in stats.items() if k[2] == "train" and k[0].endswith(os.path.join("hsigan_qgis", "train.py")))
    result = dict(machine=f"{os.uname().machine}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread",
                  raster="384 x 384 x 204 bands, tiled 256, from the Salinas-A sample", classify_cpu_seconds=seconds,
                  median=median, ratio_5x5=median["5x5"] / median["off"],
                  auto_choice_seconds=round(choice, 3), training_seconds_profiled=round(whole, 2))
    print(json.dumps(result, indent=1))
    if args.json:
        json.dump(result, open(args.json, "w"), indent=1)


def main(argv=None):
    import scenes as S

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report", "release", "cost"])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(HERE), ".dev", "accuracy", "data"))
    parser.add_argument("--scenes", nargs="+", default=S.SCENES)
    parser.add_argument("--sizes", nargs="+", default=["15", "50", "all"])
    parser.add_argument("--seeds", type=seeds_of, default=seeds_of("0-9"))
    parser.add_argument("--out")
    parser.add_argument("--pipeline", choices=["default", "none"], default="default",
                        help="run: the default pipeline (GAN ssgan or none, as hsigan:train) or GAN none's always")
    parser.add_argument("--default", help="release: a `run` folder (the default pipeline)")
    parser.add_argument("--none", help="release: a `run --pipeline none` folder")
    parser.add_argument("--baselines", help="release: bench/release.py run --stages baselines's JSON (svm, rf)")
    parser.add_argument("--json")
    parser.add_argument("--md")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--auto-boxes", type=lambda t: [int(k) for k in t.split(",")], default=None,
                        help="release: smooth-auto's candidate boxes, e.g. 1,3,5 (the table on seeds 2060-2069); "
                             "default: the engine's, smoothing_choice.boxes_of('auto')")
    args = parser.parse_args(argv)
    if args.command == "release" and not (args.default and args.none and args.baselines):
        parser.error("release needs --default, --none and --baselines")
    if args.auto_boxes is None:
        from hsigan_qgis.smoothing_choice import boxes_of
        args.auto_boxes = boxes_of("auto")
    {"run": run, "report": report, "release": release, "cost": cost}[args.command](args)


if __name__ == "__main__":
    main()
