"""Cost of the spectral kernel head (SPECTRAL_HEAD): CPU seconds to fit it and of one dense pass over a tile,
against the network's dense pass on the same tile (200 bands, 16 classes, patch 7, one torch thread).

  OMP_NUM_THREADS=1 python bench/kernel_head_cost.py [--json bench/RESULTS-kernel-head-cost.json]

Support sizes: 240 (15 px/class x 16 classes), 700 (about 50 px/class on Indian Pines) and 5000 labelled
pixels (capped at kernel_head.MAX_SUPPORT). Median of 3 repeats, process CPU time. Beside the head's CPU form
(products over blocks of pixels), its whole-tile convolution form (the GPU and ONNX form) on the same tile.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def cpu_seconds(function, repeats=3):
    times = []
    for _ in range(repeats):
        started = time.process_time()
        function()
        times.append(time.process_time() - started)
    return float(np.median(times))


def main(argv=None):
    import torch
    from hsigan_qgis.kernel_head import fit_kernel_head, head_module
    from hsigan_qgis.predict import prepare_model
    from models.classifier import SpectralSpatialNet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join(HERE, "RESULTS-kernel-head-cost.json"))
    parser.add_argument("--tile", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    bands, classes, patch = 200, 16, 7
    rng = np.random.default_rng(0)
    x = torch.randn(1, bands, args.tile + patch - 1, args.tile + patch - 1).contiguous(memory_format=torch.channels_last)
    net = prepare_model(SpectralSpatialNet(bands, classes, patch), torch.device("cpu"))
    rows = []
    with torch.inference_mode():
        network = cpu_seconds(lambda: net(x))
        for labelled in (240, 700, 5000):
            spectra = rng.normal(size=(labelled, bands)).astype(np.float32)
            labels = rng.integers(0, classes, labelled)
            fit = cpu_seconds(lambda: fit_kernel_head(spectra, labels, classes, 0))
            fitted = fit_kernel_head(spectra, labels, classes, 0)
            head = head_module(fitted, patch // 2)
            dense = cpu_seconds(lambda: head(x))
            inner = x[:, :, patch // 2:-(patch // 2), patch // 2:-(patch // 2)]
            convolution = cpu_seconds(lambda: head.scores_by_convolution(inner))  # the GPU / ONNX form, here
            rows.append(dict(labelled=labelled, support=len(fitted["support"]), fit_s=round(fit, 3),
                             head_tile_s=round(dense, 3), network_tile_s=round(network, 3),
                             head_vs_network=round(dense / network, 2),
                             convolution_form_tile_s=round(convolution, 3)))
            print(f"{labelled:>5} labelled -> {rows[-1]['support']:>4} support: fit {fit:.2f} s, dense head "
                  f"{dense:.2f} s per {args.tile}^2 tile (network {network:.2f} s: {dense / network:.1f}x; the "
                  f"convolution form {convolution:.2f} s)", flush=True)
    with open(args.json, "w") as f:
        json.dump(dict(machine=f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread",
                       tile=args.tile, bands=bands, classes=classes, patch=patch, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
