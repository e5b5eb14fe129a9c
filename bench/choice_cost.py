"""CPU seconds of smooth-auto's choice (smoothing_choice.validation_predictions, cProfile cumulative time) in
a training on the Salinas-A sample (15 px/class, GAN none, 8 epochs, seed 0, one torch thread), paired
against another checkout (e.g. a git worktree of an older commit) in alternating fresh processes.

  python bench/choice_cost.py [--against OTHER_CHECKOUT] [--repeats 7] [--json OUT.json]
  python bench/choice_cost.py --once          # one measurement of this checkout (what each run calls)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def once():
    import cProfile
    import pstats

    import torch
    sys.path.insert(0, os.getcwd())  # the checkout asked for (its hsigan_qgis)
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    torch.set_num_threads(1)
    folder = tempfile.mkdtemp()
    cfg = TrainConfig(input=os.path.join(ROOT, "sample_data", "salinas_a.tif"),
                      labels=os.path.join(ROOT, "sample_data", "salinas_a_train.gpkg"), class_field="class_name",
                      samples_per_class=15, gan="none", epochs=8, seed=0, smoothing="auto",
                      output_model=os.path.join(folder, "auto.hsigan"))
    profile = os.path.join(folder, "train.prof")
    cProfile.runctx("train(cfg)", {}, dict(train=train, cfg=cfg), profile)
    stats = pstats.Stats(profile).stats
    print(next(v[3] for k, v in stats.items() if k[2] == "validation_predictions"))


def measure(checkout):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--once"], cwd=checkout, env=env,
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--against")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.once:
        return once()
    trees = {"this": ROOT, **({"against": os.path.abspath(args.against)} if args.against else {})}
    seconds = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            seconds[name].append(round(measure(tree), 4))
    median = {name: statistics.median(v) for name, v in seconds.items()}
    commits = {name: subprocess.run(["git", "-C", tree, "describe", "--always", "--dirty"], capture_output=True,
                                    text=True).stdout.strip() for name, tree in trees.items()}
    result = dict(machine=f"{os.uname().machine}, {os.cpu_count()} CPUs, 1 torch thread", commits=commits,
                  seconds=seconds, median=median)
    if args.against:
        result["ratio_this_to_against"] = round(median["this"] / median["against"], 3)
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
