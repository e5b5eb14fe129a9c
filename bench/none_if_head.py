"""Round 26's candidate (bench/RESULTS.md, "Round 26"), scored from bench/head_weight.py's JSON files: both
pipelines fuse the kernel head with round 25's accuracy-aware weight (`window-auto-refit-acc`), and per draw
GAN none's pipeline is kept when its training labels have a median class of more than FEW_LABELS pixels and its
weight under that rule is at least NONE_IF_HEAD; otherwise ssgan's (the default's network). Prints, per cell
(draw, size, scene), the default as it ships (ssgan, `window-auto-refit`), the candidate, GAN none under the
same weight rule, how many draws switched, and the round's three conditions.

  python bench/none_if_head.py --cell engine SSGAN.json NONE.json NONE_PROBS [--cell labels ...] [--berlin ...]

Each --cell names a draw, the head_weight.py JSON files of the two pipelines and the folder of GAN none's saved
probabilities (for the training labels). --berlin adds seeds to Berlin's engine-draw cells at 50 px/class and
every pixel (round 26: seeds 2020-2039). Round 26, from the repository root:
  python bench/none_if_head.py \\
    --cell engine bench/head-weight-round25-decide-engine-{ssgan,none}.json .devdata/probs-decide19-none \\
    --cell labels bench/head-weight-round25-decide-labels-{ssgan,none}.json .devdata/probs-r21-labels-none \\
    --berlin bench/head-weight-round26-decide-berlin-{ssgan,none}.json .devdata/probs-r26-berlin-none
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from hsigan_qgis.gan import FEW_LABELS, NONE_IF_HEAD, median_class  # noqa: E402
from scenes import SCENES  # noqa: E402


def rows_of(path):
    """{(scene, size, rule): {seed: (OA, weight)}} of a head_weight.py JSON file."""
    out = {}
    for r in json.load(open(path))["rows"]:
        out.setdefault((r["scene"], r["size"], r["rule"]), {})[r["seed"]] = (r["oa"], r["weight"])
    return out


def median_of_draw(folder, scene, size, seed):
    """Median training pixels per class of a saved draw."""
    return median_class(np.bincount(np.load(os.path.join(folder, f"{scene}_{size}_{seed}.npz"))["train_labels"]))


def draws(ssgan, none, folder, scene, size):
    """Per seed: (today's OA, the candidate's, GAN none's under round 25's rule, switched)."""
    out = []
    for seed, (today, _) in sorted(ssgan[(scene, size, "window-auto-refit")].items()):
        none_oa, none_weight = none[(scene, size, "window-auto-refit-acc")][seed]
        switched = median_of_draw(folder, scene, size, seed) > FEW_LABELS and none_weight >= NONE_IF_HEAD
        ssgan_oa = ssgan[(scene, size, "window-auto-refit-acc")][seed][0]
        out.append((today, none_oa if switched else ssgan_oa, none_oa, switched))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", nargs=4, action="append", required=True, metavar=("DRAW", "SSGAN", "NONE", "PROBS"))
    parser.add_argument("--berlin", nargs=3, metavar=("SSGAN", "NONE", "PROBS"))
    args = parser.parse_args(argv)
    berlin = (rows_of(args.berlin[0]), rows_of(args.berlin[1]), args.berlin[2]) if args.berlin else None
    gains, versus_none = [], []
    for draw, ssgan_path, none_path, folder in args.cell:
        ssgan, none = rows_of(ssgan_path), rows_of(none_path)
        for size in sorted({k[1] for k in ssgan}, key=["15", "50", "all"].index):
            for scene in SCENES:
                rows = draws(ssgan, none, folder, scene, size)
                if berlin and draw == "engine" and scene == "berlin_enmap" and size != "15":
                    rows += draws(*berlin, scene, size)
                today, candidate, none_oa = np.mean([r[:3] for r in rows], axis=0)
                gains.append(candidate - today)
                if draw == "engine":
                    versus_none.append(candidate - none_oa)
                print(f"{draw:6} {size:>3} {scene:12} seeds {len(rows):2}: today {today:6.2f}, candidate "
                      f"{candidate:6.2f} ({candidate - today:+.2f}), GAN none {none_oa:6.2f} (candidate minus it "
                      f"{candidate - none_oa:+.2f}), switched {sum(r[3] for r in rows)}")
    print(f"(1) worst cell {min(gains):+.2f} (>= -0.5); (2) mean gain {np.mean(gains):+.3f} (>= +0.1); "
          f"(3) worst engine-draw cell minus GAN none {min(versus_none):+.2f} (>= -0.5)")


if __name__ == "__main__":
    main()
