"""Round 28 (bench/RESULTS.md): smooth-auto with other candidate boxes and sign-test thresholds, re-scored from
`bench/smoothing.py run` folders (they hold the validation and test predictions of boxes 1, 3, 5 and 7).
  A: boxes 1/3/5, z 1.64 (the engine's SMOOTHING=auto)   B: boxes 1/3/5/7, z 1.64
  C: boxes 1/3/5, z 1.28                                 D: boxes 1/3/5/7, z 1.28
Prints, per cell (scene, size), the mean test-OA gain of each over no smoothing, then their mean over cells and
the worst cell; with --against A, each candidate's gain over A instead.

  python bench/smoothing_boxes.py FOLDER [--against A]"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hsigan_qgis.head_choice import clearly_better  # noqa: E402

CANDIDATES = {"A": ((1, 3, 5), 1.64), "B": ((1, 3, 5, 7), 1.64), "C": ((1, 3, 5), 1.28), "D": ((1, 3, 5, 7), 1.28)}


def choose(predicted, labels, boxes, z):
    """The engine's rule (head_choice.clearly_better, as smoothing_choice.automatic_box calls it) over `boxes` at
    threshold z."""
    return clearly_better({k: predicted[k] == labels for k in boxes}, str, "no smoothing", z)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--against", default="plain", choices=["plain", "A"])
    args = parser.parse_args()
    cells = {}
    for f in sorted(os.listdir(args.folder)):
        if not f.endswith(".npz"):
            continue
        scene, size, _ = f[:-4].rsplit("_", 2)
        d = np.load(os.path.join(args.folder, f))
        oa = {k: 100 * float((d[f"test_{k}"] == d["test_gt"]).mean()) for k in (1, 3, 5, 7)}
        val = {k: d[f"val_{k}"] for k in (1, 3, 5, 7)}
        row = {name: oa[choose(val, d["val_labels"], boxes, z)] for name, (boxes, z) in CANDIDATES.items()}
        row["plain"] = oa[1]
        cells.setdefault((scene, size), []).append(row)
    base = "plain" if args.against == "plain" else "A"
    gains = {k: [] for k in CANDIDATES}
    for cell, rows in sorted(cells.items()):
        m = {k: float(np.mean([r[k] - r[base] for r in rows])) for k in CANDIDATES}
        for k, v in m.items():
            gains[k].append(v)
        print(cell, len(rows), {k: round(v, 2) for k, v in m.items()})
    print(f"against {base}: mean of {len(cells)} cells", {k: round(float(np.mean(v)), 3) for k, v in gains.items()},
          "worst cell", {k: round(min(v), 2) for k, v in gains.items()})


if __name__ == "__main__":
    main()
