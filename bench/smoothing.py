"""Round 27 (bench/RESULTS.md): the default pipeline's fused class probabilities averaged over a k x k box
(SMOOTHING), on bench/scenes.py's scenes and engine draw.

  python bench/smoothing.py run --seeds 0-9 --out FOLDER [--scenes ...] [--sizes 15 50 all]
  python bench/smoothing.py report FOLDER [FOLDER ...] --json OUT.json --md OUT.md
  python bench/smoothing.py cost --json bench/RESULTS-smoothing-cost.json

run: per scene, size and seed, the default pipeline as hsigan:train runs it (GAN ssgan; with a median class
above gan.FEW_LABELS training pixels GAN none first, kept at an automatic head weight of gan.NONE_IF_HEAD or
more), the network's and the kernel head's softmax fused at head_choice.automatic_head_weight (the head's
window 1x1 and no refit with every pixel: the bench's map, not exactly the engine's), then averaged over boxes
of 1 (none), 3, 5 and 7 px (scipy.ndimage.uniform_filter, mode 'reflect'; these scenes have no nodata). Saves
FOLDER/SCENE_SIZE_SEED.npz: the predictions at the validation and test pixels for each box, the labels, the
GAN mode kept and the head weight. Two processes on two cores: two runs with disjoint --seeds.

report: per cell, the test OA of each box, of `smooth-auto` (smoothing_choice.automatic_box on the validation
predictions of boxes 1, 3 and 5: the engine's rule) and of the best validation OA among 1, 3 and 5 (for
information), against the plain map; the mean over cells.

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
AUTO_BOXES = (1, 3, 5)  # smoothing_choice.BOXES


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
    from hsigan_qgis.gan import FEW_LABELS, NONE_IF_HEAD, median_class
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
                mode = "ssgan"
                if median_class(np.bincount(pixels.labels, minlength=len(ids))) > FEW_LABELS and len(val):
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
    parser.add_argument("command", choices=["run", "report", "cost"])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(HERE), ".dev", "accuracy", "data"))
    parser.add_argument("--scenes", nargs="+", default=S.SCENES)
    parser.add_argument("--sizes", nargs="+", default=["15", "50", "all"])
    parser.add_argument("--seeds", type=seeds_of, default=seeds_of("0-9"))
    parser.add_argument("--out")
    parser.add_argument("--json")
    parser.add_argument("--md")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    {"run": run, "report": report, "cost": cost}[args.command](args)


if __name__ == "__main__":
    main()
