"""Round 29: the default's ssgan-or-none rule (train.ssgan_or_none), scored offline from bench/engine_release.py's
files. With more than gan.FEW_LABELS training pixels in the median class the default trains GAN none first and
keeps it where its automatic kernel head weight is at least gan.NONE_IF_HEAD, else trains ssgan. Every rule
below picks one of those two jobs per draw, so the draws' files score it exactly:

  python bench/gan_rule.py FOLDER [FOLDER ...] --seeds 0-9  # rows 'none' and 'ssgan' (engine_release.py --methods
                                                          # none ssgan): every rule
  python bench/gan_rule.py FOLDER --seeds 2090-2099 --from-default   # rows 'default' and 'none': the ssgan job is
                                                          # the default's where it trained ssgan (every rule but
                                                          # 'today' keeps none wherever today's did)

Rules: 'today' (none where its head weight >= 0.9), 'w0.8' ... 'w0.5' (a lower threshold), 'val' (today's, then
none where its validation OA is at least ssgan's), 'w0.5+val' (the same from 0.5: where ssgan trains, the better
of the two jobs on the validation pixels; round 32), 'none' (none whenever the rule applies). Prints per rule the
OA per cell (scene, size; mean of seeds), against GAN none, the mean of the cells, the worst cell against none,
the draws where ssgan trained, and the criterion's choice (bench/RESULTS.md, "Round 29"); --json writes it all.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5)
FLOOR = -0.5   # the worst cell's OA against GAN none that a rule may have (issue 12)
TIE = 0.05     # rules this close to the best mean: the one training ssgan in fewer draws wins


def applies(none, median_from=None):
    """Whether the engine's rule chooses at all in this draw (gan.many_labels, from the row's validation pixels and
    median class: engine_release.py records both, `backfill` adds the median to older files); median_from: instead,
    validation pixels and a median class of at least this many pixels (round 31's candidate). Elsewhere ssgan
    trains."""
    from hsigan_qgis.gan import MANY_LABELS, many_labels

    return many_labels(none["median_class"], none["validation_pixels"],
                       MANY_LABELS if median_from is None else median_from)


def threshold(t):
    """The ssgan-or-none rule at head weight t: function(none row, ssgan row) -> (chosen row, whether ssgan
    trained)."""
    return lambda none, ssgan: (none, False) if none["head_weight"] >= t else (ssgan, True)


def rules():
    """{name: function(none row, ssgan row) -> (chosen row, whether ssgan trained)}. 'today' is round 29's
    starting point, head weight 0.9 (gan.NONE_IF_HEAD before round 30), whatever the engine's value now."""
    def then_validation(t):  # none from head weight t; below it the better of the two jobs on validation
        def rule(none, ssgan):
            if none["head_weight"] >= t:
                return none, False
            return (none if none["validation_oa"] >= ssgan["validation_oa"] else ssgan), True
        return rule

    out = {"today": threshold(THRESHOLDS[0])}
    out.update({f"w{t:g}": threshold(t) for t in THRESHOLDS[1:]})
    out["val"] = then_validation(THRESHOLDS[0])
    out["w0.5+val"] = then_validation(THRESHOLDS[-1])  # round 32
    out["none"] = lambda none, ssgan: (none, False)
    return out


def draws(folders, scenes, sizes, seeds, from_default):
    """{(scene, size, seed): (none row, ssgan row or None)}, each draw from the first folder that holds it; exits
    naming what is missing."""
    out, missing = {}, []
    for key in [(s, z, k) for s in scenes for z in sizes for k in seeds]:
        folder = next((f for f in folders if os.path.exists(os.path.join(f, "{}_{}_{}_none.json".format(*key)))),
                      folders[0])
        paths = [os.path.join(folder, "{}_{}_{}_{}.json".format(*key, m))
                 for m in ("none", "default" if from_default else "ssgan")]
        lost = [p for p in paths if not os.path.exists(p)]
        if lost:
            missing += lost
            continue
        none, other = (json.load(open(p)) for p in paths)
        if from_default:  # the default's job is ssgan's where it trained ssgan, else the none job again
            other = other if other["gan"] == "ssgan" else None
        out[key] = (none, other)
    if missing:
        sys.exit(f"gan_rule: {len(missing)} draw file(s) missing:\n  " + "\n  ".join(missing))
    return out


def score(found, scenes, sizes, seeds, median_from=None):
    """{rule: dict(cells={'scene size': OA}, against_none={...}, mean, worst, ssgan_trained)}; median_from: see
    applies."""
    out = {}
    for name, rule in rules().items():
        cells, against, trained = {}, {}, 0
        for s in scenes:
            for z in sizes:
                chosen, base = [], []
                for k in seeds:
                    none, ssgan = found[(s, z, k)]
                    if ssgan is None and (none["head_weight"] < THRESHOLDS[0] or not applies(none, median_from)):
                        sys.exit(f"gan_rule: {s} {z} {k}: no ssgan job where today's rule trains one")
                    if not applies(none, median_from):
                        row, ran = ssgan, True
                    else:
                        row, ran = rule(none, ssgan) if ssgan is not None else (none, False)
                    chosen.append(row["oa"])
                    base.append(none["oa"])
                    trained += ran
                cells[f"{s} {z}"] = round(float(np.mean(chosen)), 3)
                against[f"{s} {z}"] = round(float(np.mean(chosen) - np.mean(base)), 3)
        out[name] = dict(cells=cells, against_none=against, mean=round(float(np.mean(list(cells.values()))), 3),
                         worst=min(against.values()), ssgan_trained=trained)
    return out


def choose(scored):
    """The criterion (bench/RESULTS.md, "Round 29"): among rules whose worst cell is at least FLOOR against GAN
    none, the highest mean; within TIE of it, fewer ssgan trainings. None when no rule meets the floor."""
    eligible = {k: v for k, v in scored.items() if v["worst"] >= FLOOR}
    if not eligible:
        return None
    best = max(v["mean"] for v in eligible.values())
    close = [k for k, v in eligible.items() if v["mean"] >= best - TIE]
    return min(close, key=lambda k: (eligible[k]["ssgan_trained"], -eligible[k]["mean"]))


def main(argv=None):
    import scenes as S
    from smoothing import seeds_of

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--seeds", type=seeds_of, required=True, help="'0-9', '0-9,2100-2109'")
    parser.add_argument("--scenes", nargs="+", default=S.SCENES)
    parser.add_argument("--sizes", nargs="+", default=["50", "all"])
    parser.add_argument("--from-default", action="store_true")
    parser.add_argument("--median-from", type=float, help="the rule applies from this median class (with validation "
                        "pixels) instead of the engine's gan.many_labels (round 31)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    found = draws(args.folders, args.scenes, args.sizes, args.seeds, args.from_default)
    scored = score(found, args.scenes, args.sizes, args.seeds, args.median_from)
    cells = list(next(iter(scored.values()))["cells"])
    print(f"{len(args.seeds)} seeds ({args.seeds[0]}...{args.seeds[-1]}), {', '.join(args.folders)}"
          + (f", the rule from a median class of {args.median_from:g}" if args.median_from is not None else "") + ". "
          "OA % per cell (mean of "
          "seeds), against GAN none in brackets\n")
    print("| rule | " + " | ".join(cells) + " | mean of cells | worst against none | ssgan trained |")
    print("|---|" + "---|" * (len(cells) + 3))
    for name, v in scored.items():
        print(f"| {name} | " + " | ".join(f"{v['cells'][c]:.2f} ({v['against_none'][c]:+.2f})" for c in cells)
              + f" | {v['mean']:.2f} | {v['worst']:+.2f} | {v['ssgan_trained']} |")
    chosen = choose(scored)
    print(f"\nCriterion's choice: {chosen}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(folders=args.folders, seeds=args.seeds, from_default=args.from_default,
                           median_from=args.median_from, rules=scored,
                           chosen=chosen, floor=FLOOR, tie=TIE), f, indent=1)


if __name__ == "__main__":
    main()
