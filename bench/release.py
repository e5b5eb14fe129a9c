"""The release table (issue 12): the default pipeline beside GAN none and the classical baselines, on seeds no
decision used, from one command.

  python bench/release.py --data DATA --seeds 2040 2041 ... 2049 --workers 2        # run, then report
  python bench/release.py report --seeds ...                                        # tables from earlier runs
  python bench/release.py run --stages baselines --tag TAG --seeds ...              # some stages only (below)
  python bench/release.py rules --probs-none DIR --probs-ssgan DIR [DIR] --seeds 0 ... 9  # GAN rules (17, 19, 24)
  python bench/release.py candidate --probs-candidate DIR --against RULES.json --seeds 0 ... 9  # (round 18)

DATA: `bench/scenes.py export`'s arrays. The runs (bench/scenes.py run, every scene at 15 and 50 px/class and
every training pixel):
  baselines   svm, rf                  RBF-SVM and random forest on spectra (benchmark draw)
  none        choosekr:none:1000       GAN none's network on the engine draw, probabilities saved (--probs)
  ssgan       choosekr:ssgan:550       GAN ssgan's network (550 steps), the same
The report scores each network as hsigan:train ships it, fused with the spectral kernel head whose window and
weight are chosen on the validation blocks (bench/head_weight.py's window-auto-refit-acc, the engine's rule
since round 26: with every pixel the head is then refitted on the training and validation pixels together), and
alone (fixed-0); the default (GAN=ssgan) keeps, per draw, GAN none's pipeline or ssgan's as hsigan:train does
(default_rows); OA, AA and kappa per scene and size (mean ± std over seeds), the mean of scenes, the issue's
targets, and the median training seconds. Tables of rounds 15-24 scored the log-loss weight rule and ssgan
always as the default: commit 2ea4aa3 reproduces them. Written to bench/RESULTS-release.md and bench/release-scored.json (which also
holds GAN auto's rows and the ensemble's: the two default pipelines' probabilities averaged, round 19).
Each `run` stage is skipped when its JSON already holds every scene, size and seed (a cut run reruns whole).
`run --stages baselines` runs that stage alone (bench/TAG-baselines.json: bench/smoothing.py release's baselines;
the runs are scenes.py's `run --methods svm rf --sizes 15 50 all`).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import head_weight  # noqa: E402
import scenes  # noqa: E402
from hsigan_qgis.gan import FEW_LABELS, MANY_LABELS, NONE_IF_HEAD, median_class  # noqa: E402
from hsigan_qgis.metrics import confusion_matrix, summarise  # noqa: E402

SIZES = ["15", "50", "all"]
RUNS = {"baselines": ["svm", "rf"], "none": ["choosekr:none:1000"], "ssgan": ["choosekr:ssgan:550"]}
NETS = {"none": "GAN none", "ssgan": "GAN ssgan (the default)"}


def paths(tag):
    root = os.path.dirname(HERE)
    return dict(json={k: os.path.join(HERE, f"{tag}-{k}.json") for k in RUNS},
                probs={k: os.path.join(root, ".devdata", f"probs-{tag}-{k}") for k in NETS},
                scored=os.path.join(HERE, f"{tag}-scored.json"), md=os.path.join(HERE, "RESULTS-release.md"))


def complete(path, seeds, methods):
    if not os.path.exists(path):
        return False
    done = {(r["scene"], r["size"], r["seed"]) for r in json.load(open(path))["runs"]
            if any(r["method"].startswith(m.split(":")[0]) for m in methods)}
    return all((s, z, k) in done for s in scenes.SCENES for z in SIZES for k in seeds)


def run(args, where):
    for name, methods in RUNS.items():
        if name not in args.stages:
            continue
        if complete(where["json"][name], args.seeds, methods):
            print(f"{name}: already complete in {where['json'][name]}", flush=True)
            continue
        argv = ["run", "--data", args.data, "--methods", *methods, "--workers", str(args.workers),
                "--sizes", *SIZES, "--seeds", *map(str, args.seeds), "--json", where["json"][name]]
        if name in NETS:
            argv += ["--probs", where["probs"][name]]
        print(f"{name}: bench/scenes.py {' '.join(argv)}", flush=True)
        scenes.main(argv)


def score(where, data):
    """Rows (scene, size, seed, method, oa, aa, kappa, seconds) of every method of the table."""
    rows, _ = score_networks({net: [where["probs"][net]] for net in NETS}, data)
    for name in RUNS:
        for r in json.load(open(where["json"][name]))["runs"]:
            if r["method"] in ("svm", "rf") or (name == "none" and r["method"] == "svm-engine-draw"):
                rows.append({k: r[k] for k in ("scene", "size", "seed", "method", "oa", "aa", "kappa", "seconds")})
    return rows


def score_networks(probs, data):
    """(rows, medians) from each network's saved probabilities (probs: {net: [folders]}): rows of both networks
    in the default pipeline and alone, then GAN auto's (auto_rows) and the ensemble's (ensemble_rows); medians:
    each draw's median training pixels per class (classes without any left out), for the rules that look at the
    number of labels."""
    rows, cache, validation, medians, pipelines = [], {}, {}, {}, {}
    for net in NETS:
        for folder in probs[net]:
            for path in sorted(os.listdir(folder)):
                d = dict(np.load(os.path.join(folder, path), allow_pickle=False))
                scene, size, seed = path[:-4].rsplit("_", 2)
                truth = np.searchsorted(d["ids"], d["test_gt"])
                heads = head_weight.window_heads(scene, size, int(seed), data, cache)
                window, weight = head_weight.window_rule(d, heads, ENGINE_RULE)
                test = head_weight.shipped_test_head(scene, size, int(seed), data, cache, heads, window, d)
                fused = head_weight.mix(d["net_test"], test, weight)
                val = head_weight.oa(head_weight.mix(d["net_val"], heads[window][0], weight), d["val_labels"])
                validation[(scene, size, int(seed), net)] = val if len(d["val_labels"]) else None
                medians[(scene, size, int(seed))] = median_class(np.bincount(d["train_labels"]))
                pipelines[(scene, size, int(seed), net)] = fused, truth, len(d["ids"]), float(d["seconds"])
                for method, probs_ in ((f"{net}, default pipeline", fused), (f"{net}, network alone", d["net_test"])):
                    figures = summarise(confusion_matrix(truth, probs_.argmax(1), len(d["ids"])))
                    rows.append(dict(scene=scene, size=size, seed=int(seed), method=method, oa=figures["oa"],
                                     aa=figures["aa"], kappa=figures["kappa"], seconds=float(d["seconds"]),
                                     window=int(window), weight=float(weight)))
    return rows + default_rows(rows, medians) + auto_rows(rows, validation) + ensemble_rows(pipelines), medians


def default_rows(rows, medians):
    """The default, GAN=ssgan, as hsigan:train runs it since round 26 (gan.tries_none_first): with a median class
    of at least MANY_LABELS training pixels (more than 20 before round 31) GAN none's pipeline where its head weight
    is NONE_IF_HEAD or more (its seconds: GAN none's), else ssgan's (its seconds: both trainings); with fewer,
    ssgan's. The validation pixels, which gan.many_labels also asks for, are not in these rows."""
    fused = {(r["scene"], r["size"], r["seed"], r["method"].split(",")[0]): r for r in rows
             if r["method"].endswith("default pipeline")}
    out = []
    for (scene, size, seed, net), none in fused.items():
        ssgan = fused.get((scene, size, seed, "ssgan"))
        if net != "none" or ssgan is None:
            continue
        many = medians[(scene, size, seed)] >= MANY_LABELS
        chosen = "none" if many and none["weight"] >= NONE_IF_HEAD else "ssgan"
        seconds = none["seconds"] + (ssgan["seconds"] if chosen == "ssgan" else 0) if many else ssgan["seconds"]
        out.append(dict(fused[(scene, size, seed, chosen)], method="default", chosen=chosen, seconds=seconds))
    return out


def ensemble_rows(pipelines):
    """GAN none and ssgan averaged (round 19): per draw, the mean of the two default pipelines' class
    probabilities; its seconds are both trainings'."""
    out = []
    for (scene, size, seed, net), (fused, truth, n_classes, seconds) in pipelines.items():
        other = pipelines.get((scene, size, seed, "ssgan"))
        if net != "none" or other is None:
            continue
        figures = summarise(confusion_matrix(truth, (fused + other[0]).argmax(1), n_classes))
        out.append(dict(scene=scene, size=size, seed=seed, method="ensemble, default pipeline", oa=figures["oa"],
                        aa=figures["aa"], kappa=figures["kappa"], seconds=seconds + other[3]))
    return out


def auto_rows(rows, validation):
    """GAN=auto (hsigan_qgis/auto_gan.py) from the two default pipelines: per draw, the one whose fused model has
    the higher validation OA (a tie, or no validation pixel, keeps none), as hsigan:train would keep it."""
    fused = {(r["scene"], r["size"], r["seed"], r["method"].split(",")[0]): r for r in rows
             if r["method"].endswith("default pipeline")}
    out = []
    for (scene, size, seed, net), row in fused.items():
        if net != "none" or (scene, size, seed, "ssgan") not in fused:
            continue
        a, b = validation[(scene, size, seed, "none")], validation[(scene, size, seed, "ssgan")]
        chosen = "ssgan" if a is not None and b is not None and b > a else "none"
        both = fused[(scene, size, seed, "none")]["seconds"] + fused[(scene, size, seed, "ssgan")]["seconds"]
        out.append(dict(fused[(scene, size, seed, chosen)], method="auto, default pipeline", chosen=chosen,
                        seconds=both))
    return out


ENGINE_RULE = "window-auto-refit-acc"  # bench/head_weight.py's name of the engine's head window and weight rule
ORDER = ["default", "ssgan, default pipeline", "none, default pipeline", "auto, default pipeline", "ssgan, network alone",
         "none, network alone", "svm", "svm-engine-draw", "rf"]
LABEL = {"default": f"**default** (GAN ssgan, or GAN none where its head weight reaches {NONE_IF_HEAD:g} with "
                    f"{MANY_LABELS} px/class or more; kernel head automatic)",
         "ssgan, default pipeline": "GAN ssgan 550 steps always + kernel head, automatic",
         "none, default pipeline": "GAN none + kernel head, automatic",
         "auto, default pipeline": "GAN auto (none or ssgan by validation OA) + kernel head",
         "ssgan, network alone": "GAN ssgan, network alone (head off)",
         "none, network alone": "GAN none, network alone (head off)",
         "svm": "RBF-SVM on spectra", "svm-engine-draw": "RBF-SVM, engine draw", "rf": "random forest on spectra"}


def table(rows, seeds, order=ORDER, label=LABEL, kappa_std=False):
    """The tables of the report from rows (score's): methods in `order`, named by `label`; the scenes the rows
    hold (the CPU seconds: Indian Pines', or the first scene's without it); kappa_std: kappa's std per scene too."""
    rows = [r for r in rows if r["seed"] in seeds]
    by = {}
    for r in rows:
        by.setdefault((r["scene"], r["size"], r["method"]), []).append(r)
    for key, rs in by.items():
        assert sorted(r["seed"] for r in rs) == sorted(seeds), f"{key}: seeds {sorted(r['seed'] for r in rs)}"

    def mean(s, z, m, key="oa"):
        return float(np.mean([r[key] for r in by[(s, z, m)]]))

    names = [m for m in order if any(k[2] == m for k in by)]
    sizes = [z for z in SIZES if any(k[1] == z for k in by)]
    present = [s for s in scenes.SCENES if any(k[0] == s for k in by)]
    timed = present[0]
    lines = [f"Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}). OA % (mean of seeds) per scene and "
             "the mean of scenes; CPU s: median CPU seconds of one training on "
             f"{'Indian Pines' if timed == 'indian_pines' else timed} at that size (network, "
             "kernel head and scoring on one torch thread; GAN auto: both candidates; the baselines: wall seconds of "
             "the fit and CV search). The whole `bin/hsigan train` job on 2 cores: README, Accuracy.", ""]
    for z in sizes:
        lines += [f"**{z if z == 'all' else z + ' px/class'}**", "",
                  "| method | " + " | ".join(present) + " | mean of scenes | AA (mean) | kappa (mean) | CPU s |",
                  "|---|" + "---|" * (len(present) + 4)]
        for m in names:
            per = [mean(s, z, m) for s in present]
            aa = np.mean([mean(s, z, m, "aa") for s in present])
            kappa = np.mean([mean(s, z, m, "kappa") for s in present])
            secs = np.median([r["seconds"] for r in by[(timed, z, m)]])
            lines.append(f"| {label[m]} | " + " | ".join(f"{v:.2f}" for v in per) +
                         f" | {np.mean(per):.2f} | {aa:.2f} | {kappa:.4f} | {secs:.1f} |")
        lines.append("")
    lines += ["**Per scene** (mean ± std over seeds)", "",
              "| scene | size | method | OA % | AA % | kappa |", "|---|---|---|---|---|---|"]
    for s in present:
        for z in sizes:
            for m in names:
                rs = by[(s, z, m)]
                f = {k: (np.mean([r[k] for r in rs]), np.std([r[k] for r in rs])) for k in ("oa", "aa", "kappa")}
                lines.append(f"| {s} | {z} | {label[m]} | {f['oa'][0]:.2f} ± {f['oa'][1]:.2f} | "
                             f"{f['aa'][0]:.2f} ± {f['aa'][1]:.2f} | {f['kappa'][0]:.4f}"
                             + (f" ± {f['kappa'][1]:.4f} |" if kappa_std else " |"))
    if sizes != SIZES:
        return "\n".join(lines)
    lines += ["", "**Issue 12's targets** (default pipeline; the SVM on the benchmark draw)", "",
              "| scene | default - SVM at 15 px/class (target +10) | default - SVM, every pixel (target >= 0) | "
              "default - GAN none, worst size (target >= -0.5) |", "|---|---|---|---|"]
    d, n = "default", "none, default pipeline"
    for s in present:
        worst = min(SIZES, key=lambda z: mean(s, z, d) - mean(s, z, n))
        lines.append(f"| {s} | {mean(s, '15', d) - mean(s, '15', 'svm'):+.2f} | "
                     f"{mean(s, 'all', d) - mean(s, 'all', 'svm'):+.2f} | "
                     f"{mean(s, worst, d) - mean(s, worst, n):+.2f} ({worst}) |")
    return "\n".join(lines)


def report(args, where):
    rows = score(where, args.data)
    with open(where["scored"], "w") as f:
        json.dump(dict(seeds=args.seeds, rows=rows), f, indent=1)
    meta = json.load(open(where["json"]["ssgan"]))["meta"]
    text = table(rows, args.seeds)
    print(text)
    with open(where["md"] + ".part", "w") as f:
        f.write("# Release table: the default pipeline beside GAN none and the classical baselines "
                "(bench/release.py)\n\nMeant for seeds no decision used (round 26: 2040-2049, `--tag release26`; round 16: 1300-1309, `--tag release16`, commit 2ea4aa3; round 15: 1200-1209, bench/RESULTS-release15.md; bench/RESULTS.md, "
                "Design, lists the seen ones). "
                "Written by `python bench/release.py` (its docstring: the runs and the scoring). Scenes, splits and "
                "draws: bench/RESULTS.md, Design. Machine: " + f"{meta['machine']}, {meta['workers']} processes x "
                f"{meta['threads']} torch thread.\n\n" + text + "\n")
    os.replace(where["md"] + ".part", where["md"])


def seed_means(pairs, seeds):
    """{(scene, size, method): mean OA} from ((scene, size, method), OA) pairs, one per seed of seeds."""
    by = {}
    for key, oa in pairs:
        by.setdefault(key, []).append(oa)
    for key, oas in by.items():
        assert len(oas) == len(seeds), f"{key}: {len(oas)} draws, {len(seeds)} seeds"
    return {k: float(np.mean(v)) for k, v in by.items()}


def against_default(oa, methods, candidates, seeds):
    """(markdown, verdict) of candidates against the default (ssgan) and GAN none: oa {(scene, size, method): mean
    OA over the seeds}; verdict per candidate: round 11's criterion (mean gain over the scenes and sizes >= +0.3,
    none below -0.5) and its worst case against GAN none."""
    present = [s for s in scenes.SCENES if any(k[0] == s for k in oa)]  # a scene-only set (round 24): its cells
    sizes = [z for z in SIZES if any(k[1] == z for k in oa)]
    lines = [f"Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}), OA % (mean of seeds), default pipeline "
             "(kernel head automatic, refitted with every pixel); in brackets: minus ssgan (the default) / minus "
             "GAN none.", "", "| size | GAN | " + " | ".join(present) + " | mean of scenes |",
             "|---|---|" + "---|" * (len(present) + 1)]
    for z in sizes:
        for m in methods:
            cells = [f"{oa[(s, z, m)]:.2f}" + (f" ({oa[(s, z, m)] - oa[(s, z, 'ssgan')]:+.2f} / "
                                                f"{oa[(s, z, m)] - oa[(s, z, 'none')]:+.2f})" if m != "ssgan" else "")
                     for s in present]
            lines.append(f"| {z} | {m} | " + " | ".join(cells) +
                         f" | {np.mean([oa[(s, z, m)] for s in present]):.2f} |")
    lines += ["", "| GAN rule | mean gain over ssgan (scenes and sizes) | worst scene and size | round 11's "
              "criterion (>= +0.3, none below -0.5) | worst minus GAN none |", "|---|---|---|---|---|"]
    verdict = {}
    for m in candidates:
        gains = {(s, z): oa[(s, z, m)] - oa[(s, z, "ssgan")] for s in present for z in sizes}
        versus_none = {(s, z): oa[(s, z, m)] - oa[(s, z, "none")] for s in present for z in sizes}
        worst, worst_none = min(gains, key=gains.get), min(versus_none, key=versus_none.get)
        mean = float(np.mean(list(gains.values())))
        verdict[m] = dict(mean_gain=mean, worst=[*worst, gains[worst]], passes=mean >= 0.3 and gains[worst] >= -0.5,
                          worst_versus_none=[*worst_none, versus_none[worst_none]])
        lines.append(f"| {m} | {mean:+.2f} | {gains[worst]:+.2f} ({' '.join(worst)}) | "
                     f"{'passes' if verdict[m]['passes'] else 'fails'} | {versus_none[worst_none]:+.2f} "
                     f"({' '.join(worst_none)}) |")
    return "\n".join(lines), verdict


def candidate(args):
    """Round 18's decision: a candidate ssgan network (its saved probabilities, scored in the default pipeline)
    against the default and GAN none as an earlier `rules --json` recorded them on the same seeds."""
    rows, _ = score_networks({"none": [], "ssgan": args.probs_candidate}, args.data)
    committed = json.load(open(args.against))
    assert committed["seeds"] == args.seeds, f"{args.against} holds seeds {committed['seeds']}, not {args.seeds}"
    oa = {tuple(k.split("|")): v for k, v in committed["oa"].items() if k.endswith(("|ssgan", "|none"))}
    shipped = [r for r in rows if r["seed"] in args.seeds and r["method"] == "ssgan, default pipeline"]
    oa.update(seed_means((((r["scene"], r["size"], args.name), r["oa"]) for r in shipped), args.seeds))
    text, verdict = against_default(oa, ("ssgan", "none", args.name), (args.name,), args.seeds)
    seconds = [r["seconds"] for r in shipped if r["scene"] == "indian_pines" and r["size"] == "15"]
    text += f"\n\nMedian training seconds of {args.name}, Indian Pines 15 px/class: {np.median(seconds):.1f}"
    write(args, text, f"{args.name} against the default (`python bench/release.py candidate`)", oa, verdict,
          probs_candidate=args.probs_candidate, against=args.against)


def rules(args):
    """Rounds 17, 19 and 24: GAN auto, auto-if-many, the ensemble and none-if-head against the default (ssgan) and
    GAN none, each scene and size, from saved probabilities of the two networks on the same draws (no training, no
    baselines)."""
    rows, medians = score_networks({"none": args.probs_none, "ssgan": args.probs_ssgan}, args.data)
    pipelines = {(r["scene"], r["size"], r["seed"], r["method"].split(",")[0]): r["oa"] for r in rows
                 if r["seed"] in args.seeds and r["method"].endswith("default pipeline")}
    none_weight = {(r["scene"], r["size"], r["seed"]): r["weight"] for r in rows
                   if r["method"] == "none, default pipeline"}
    for (scene, size, seed, gan), oa in list(pipelines.items()):
        few = medians[(scene, size, seed)] <= FEW_LABELS
        if gan == "auto":  # auto-if-many: ssgan with few labels, else auto
            pipelines[(scene, size, seed, "auto-if-many")] = pipelines[(scene, size, seed, "ssgan")] if few else oa
        if gan == "none":  # none-if-head (rounds 24, 30): none with many labels where its head weight >= NONE_IF_HEAD
            head = not few and none_weight[(scene, size, seed)] >= NONE_IF_HEAD
            pipelines[(scene, size, seed, "none-if-head")] = oa if head else pipelines[(scene, size, seed, "ssgan")]
    oa = seed_means((((scene, size, gan), oa) for (scene, size, _, gan), oa in pipelines.items()), args.seeds)
    text, verdict = against_default(oa, ("ssgan", "none", "auto", "auto-if-many", "ensemble", "none-if-head"),
                                    ("auto", "auto-if-many", "ensemble", "none-if-head"), args.seeds)
    write(args, text, "GAN rules from saved probabilities (`python bench/release.py rules`)", oa, verdict,
          probs_none=args.probs_none, probs_ssgan=args.probs_ssgan)


def write(args, text, title, oa, verdict, **sources):
    """Print the table; write it (--md) and the seeds, sources, figures and verdict (--json) where asked."""
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(seeds=args.seeds, **sources, oa={"|".join(k): v for k, v in oa.items()},
                           verdict=verdict), f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write(f"# {title}\n\n" + text + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", nargs="?", default="all", choices=["all", "run", "report", "rules", "candidate"])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(HERE), ".devdata", "scenes"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(2040, 2050)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stages", nargs="+", choices=list(RUNS), default=list(RUNS),
                        help="run: only these stages (e.g. `run --stages baselines`: the SVM and the random forest "
                        "alone, for bench/smoothing.py release)")
    parser.add_argument("--tag", default="release26", help="prefix of the run files (bench/TAG-*.json); round "
                        "15's table: --tag release --seeds 1200 ... 1209 (bench/RESULTS-release15.md, scored before "
                        "round 16's refit of the head)")
    parser.add_argument("--probs-none", nargs="+", help="rules: folders of GAN none's saved probabilities")
    parser.add_argument("--probs-ssgan", nargs="+", help="rules: folders of GAN ssgan's saved probabilities")
    parser.add_argument("--probs-candidate", nargs="+", help="candidate: folders of its saved probabilities")
    parser.add_argument("--against", help="candidate: a rules --json file of the same seeds (the default and GAN "
                        "none)")
    parser.add_argument("--name", default="candidate", help="candidate: its name in the table")
    parser.add_argument("--json", help="rules, candidate: write the figures and the verdict here")
    parser.add_argument("--md", help="rules, candidate: write the table here")
    args = parser.parse_args(argv)
    if args.step == "rules":
        if not (args.probs_none and args.probs_ssgan):
            parser.error("rules needs --probs-none and --probs-ssgan")
        return rules(args)
    if args.step == "candidate":
        if not (args.probs_candidate and args.against):
            parser.error("candidate needs --probs-candidate and --against")
        return candidate(args)
    if args.stages != list(RUNS) and args.step != "run":
        parser.error("--stages: with `run` only (the report needs every stage)")
    where = paths(args.tag)
    if args.step in ("all", "run"):
        run(args, where)
    if args.step in ("all", "report"):
        report(args, where)


if __name__ == "__main__":
    main()
