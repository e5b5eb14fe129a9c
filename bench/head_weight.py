"""Rules for SPECTRAL_HEAD_WEIGHT = automatic, studied offline (issue 12, round 4).

`bench/scenes.py run --methods choosekr --probs DIR` saves, per scene, size and seed, the network's and the
kernel head's class probabilities at hsigan:train's validation pixels and at the test pixels (the engine
draw). Every weight rule is then a function of the validation probabilities alone, scored on the test
side without training anything again:

  fixed-W      the weight W (0 = the network alone, 1 = the head alone)
  oa-2         0.3 or 0.7, whichever has the higher validation OA, ties 0.3 (round 3's default)
  oa-2-mM      the same, but 0.7 only when its validation OA beats 0.3's by at least M points
  mcnemar-Z    0.7 only when, on the validation pixels where 0.3 and 0.7 disagree on right/wrong, 0.7 wins
               by Z standard errors (a one-sided sign test: (b - c) / sqrt(b + c) >= Z)
  nll-grid     the weight of 0.1, 0.2 ... 0.9 with the lowest validation log-loss of the fused probabilities
  nll-grid-sA  that weight shrunk toward 0.3: 0.3 + A (w - 0.3)
  nll-2        0.3 or 0.7 by validation log-loss
  nll-lo       the grid 0.1 ... 0.5 by validation log-loss
  loglin-W     log-linear fusion, p ~ net^(1-W) * head^W, fixed W; loglin-nll: W by validation log-loss

Usage:
  python bench/head_weight.py DIR [DIR ...] [--json OUT.json] [--md OUT.md] [--rules ...] [--runs SCENES.json]
The round 4 tables (bench/RESULTS-round4*.md):
  python bench/scenes.py run --methods choosekr --sizes 15 50 --seeds 0 1 2 3 4 5 6 7 8 9 \
      --json bench/scenes-round4-decide.json --probs .devdata/probs-decide
  python bench/head_weight.py .devdata/probs-decide --json bench/head-weight-decide.json \
      --md bench/RESULTS-round4-decide.md
  python bench/scenes.py run --methods svm choosekr --sizes 15 50 all --seeds 200 201 202 \
      --json bench/scenes-round4-final.json --probs .devdata/probs-final
  python bench/head_weight.py .devdata/probs-final --runs bench/scenes-round4-final.json \
      --rules fixed-0 fixed-0.3 fixed-0.5 fixed-0.7 fixed-1 oa-2 oa-2-m5 nll-grid nll-grid-s0.5 loglin-nll \
      --json bench/head-weight-final.json --md bench/RESULTS-round4.md
  (seeds 100-102, seen: the same with --methods choosekr --sizes 15 50, scenes-round4-seen.json,
   .devdata/probs-seen, head-weight-seen.json, RESULTS-round4-seen.md)
"""
import argparse
import glob
import json
import os

import numpy as np

GRID = [round(0.1 * i, 1) for i in range(1, 10)]
FIXED = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]


def mix(net, kernel, w):
    return (1 - w) * net + w * kernel


def loglin(net, kernel, w):
    z = (1 - w) * np.log(np.clip(net, 1e-12, None)) + w * np.log(np.clip(kernel, 1e-12, None))
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def oa(probs, labels):
    return 100.0 * float((probs.argmax(1) == labels).mean()) if len(labels) else float("nan")


def nll(probs, labels):
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def choose_oa(d, weights, margin=0.0):
    """The first weight unless a later one beats it on validation OA by at least `margin` points."""
    scores = [oa(mix(d["net_val"], d["kernel_val"], w), d["val_labels"]) for w in weights]
    best = max(range(len(weights)), key=lambda i: (scores[i] - (margin if i else 0), -i))
    return weights[best]


def choose_mcnemar(d, z):
    y = d["val_labels"]
    right3 = mix(d["net_val"], d["kernel_val"], 0.3).argmax(1) == y
    right7 = mix(d["net_val"], d["kernel_val"], 0.7).argmax(1) == y
    b, c = int((right7 & ~right3).sum()), int((right3 & ~right7).sum())
    return 0.7 if b + c and (b - c) / np.sqrt(b + c) >= z else 0.3


def choose_nll(d, weights, fuse=mix):
    return min(weights, key=lambda w: nll(fuse(d["net_val"], d["kernel_val"], w), d["val_labels"]))


def rules():
    """name -> (fusion, rule(d) -> weight)."""
    out = {f"fixed-{w:g}": (mix, lambda d, w=w: w) for w in FIXED}
    out["oa-2"] = (mix, lambda d: choose_oa(d, [0.3, 0.7]))
    for m in (1, 2, 3, 4, 5, 6, 8, 10):
        out[f"oa-2-m{m}"] = (mix, lambda d, m=m: choose_oa(d, [0.3, 0.7], m))
    for z in (1.0, 1.64, 2.0):
        out[f"mcnemar-{z:g}"] = (mix, lambda d, z=z: choose_mcnemar(d, z))
    out["nll-grid"] = (mix, lambda d: choose_nll(d, GRID))
    for a in (0.25, 0.5):
        out[f"nll-grid-s{a:g}"] = (mix, lambda d, a=a: 0.3 + a * (choose_nll(d, GRID) - 0.3))
    out["nll-2"] = (mix, lambda d: choose_nll(d, [0.3, 0.7]))
    out["nll-lo"] = (mix, lambda d: choose_nll(d, GRID[:5]))
    for w in (0.2, 0.3, 0.5):
        out[f"loglin-{w:g}"] = (loglin, lambda d, w=w: w)
    out["loglin-nll"] = (loglin, lambda d: choose_nll(d, GRID, loglin))
    return out


def evaluate(dirs, names=None):
    """Rows: scene, size, seed, rule, weight, test OA."""
    table = rules()
    rows = []
    for path in sorted(p for d in dirs for p in glob.glob(os.path.join(d, "*.npz"))):
        d = dict(np.load(path, allow_pickle=False))
        scene, size, seed = os.path.basename(path)[:-4].rsplit("_", 2)
        truth = np.searchsorted(d["ids"], d["test_gt"])
        for name, (fuse, rule) in table.items():
            if names and name not in names:
                continue
            w = float(rule(d)) if len(d["val_labels"]) else 0.3
            rows.append(dict(scene=scene, size=size, seed=int(seed), rule=name, weight=round(w, 3),
                             oa=round(oa(fuse(d["net_test"], d["kernel_test"], w), truth), 2),
                             seconds=float(d["seconds"])))
    return rows


def summarise(rows):
    """Markdown: per size, each rule's mean OA per scene, the mean of scenes, its gain over the network alone
    (fixed-0) on the mean and its worst scene, and the worst single seed."""
    scenes = [s for s in ("indian_pines", "berlin_enmap", "salinas_a") if any(r["scene"] == s for r in rows)]
    sizes = sorted({r["size"] for r in rows}, key=lambda z: 10 ** 6 if z == "all" else int(z))
    names = list(dict.fromkeys(r["rule"] for r in rows))
    by = {(r["scene"], r["size"], r["rule"], r["seed"]): r for r in rows}
    lines = []
    for z in sizes:
        seeds = sorted({r["seed"] for r in rows if r["size"] == z})
        lines += ["", f"**{z} px/class, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)})**, OA %, mean of seeds; "
                  "'vs none': minus the network alone (fixed-0); worst seed: the largest single-seed loss; "
                  "s (IP): median seconds on Indian Pines (rules: CPU s of network + head fit + dense passes; "
                  "svm rows: wall s of the SVM).", "",
                  "| rule | " + " | ".join(scenes) + " | mean | vs none: mean | worst scene | worst seed | mean weight | s (IP) |",
                  "|---|" + "---|" * (len(scenes) + 6)]
        for n in names:
            if not all((s, z, n, seed) in by for s in scenes for seed in seeds):
                continue
            per = {s: np.mean([by[(s, z, n, k)]["oa"] for k in seeds]) for s in scenes}
            delta = {s: per[s] - np.mean([by[(s, z, "fixed-0", k)]["oa"] for k in seeds]) for s in scenes}
            seed_loss = min(by[(s, z, n, k)]["oa"] - by[(s, z, "fixed-0", k)]["oa"] for s in scenes for k in seeds)
            weight = np.mean([by[(s, z, n, k)]["weight"] for s in scenes for k in seeds])
            secs = [by[(s, z, n, k)]["seconds"] for s in scenes[:1] for k in seeds]
            lines.append(f"| {n} | " + " | ".join(f"{per[s]:.2f}" for s in scenes) +
                         f" | {np.mean(list(per.values())):.2f} | {np.mean(list(delta.values())):+.2f} | "
                         f"{min(delta.values()):+.2f} | {seed_loss:+.1f} | {weight:.2f} | {np.median(secs):.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--rules", nargs="+")
    parser.add_argument("--runs", nargs="+", default=[], help="bench/scenes.py JSON files whose svm, "
                        "svm-engine-draw and choosekr-* rows join the table (same scenes, sizes, seeds)")
    parser.add_argument("--json")
    parser.add_argument("--md")
    args = parser.parse_args(argv)
    rows = evaluate(args.dirs, args.rules)
    keys = {(r["scene"], r["size"], r["seed"]) for r in rows}
    for path in args.runs:
        rows += [dict(scene=r["scene"], size=r["size"], seed=r["seed"], rule=r["method"], weight=r.get("chosen", 0),
                      oa=round(r["oa"], 2), seconds=r["seconds"])
                 for r in json.load(open(path))["runs"]
                 if (r["scene"], r["size"], r["seed"]) in keys and (r["method"].startswith("svm") or
                                                                    r["method"].startswith("choosekr"))]
    text = summarise(rows)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows), f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write("# SPECTRAL_HEAD weight rules on the engine draw (bench/head_weight.py)\n\n"
                    "Written by `python bench/head_weight.py` from the probabilities `bench/scenes.py run --methods "
                    "choosekr --probs DIR` saved; rules: this script's docstring; findings: bench/RESULTS.md, "
                    "Round 4.\n" + text + "\n")


if __name__ == "__main__":
    main()
