"""Command line for the QGIS-free engine: hsigan train|augment|classify|assess|export-onnx|check.

Options mirror the QGIS parameters (INPUT -> --input, CLASS_FIELD -> --class-field), with the same
defaults and help, because both are generated from the config dataclasses. Errors print one line and
exit with status 2 (bad input), 130 (cancelled) or 1 (an unexpected fault; HSIGAN_DEBUG=1 shows its
traceback)."""
import argparse
import json
import logging
import os
import signal
import sys
import threading

from . import config as cfgs
from .errors import Cancelled, InputError, translate
from .feedback import ConsoleFeedback
from .results import as_dict

JOBS = {
    "train": (cfgs.TrainConfig, "Train a classifier (optionally with a GAN) from a raster and label vectors."),
    "classify": (cfgs.ClassifyConfig, "Classify a raster with a trained model, tile by tile."),
    "assess": (cfgs.AssessConfig, "Accuracy of a classification map against reference vectors."),
    "augment": (cfgs.AugmentConfig, "Write a training-sample file enlarged with synthetic labelled samples "
                                    "from a conditional WGAN-GP, with a real-vs-synthetic fidelity report."),
    "export-onnx": (cfgs.ExportOnnxConfig, "Write a model's classifier as an ONNX segmentation model with the "
                                           "metadata the Deepness QGIS plugin reads."),
}


def _add_options(parser, config_class):
    """One option per config field: booleans settable both ways (--cog / --no-cog) with the field's default;
    bounds are checked by config.check, the same check the engine and the QGIS dialogs make."""
    for p in cfgs.parameters(config_class):
        bounds = f" ({p.bounds_text()})" if p.kind in (int, float) and not p.choices else ""
        help_text = p.help + bounds + ("" if p.required else f" (default: {p.default})")
        if p.required:
            parser.add_argument(p.flag, required=True, help=help_text)
        elif p.kind is bool:
            parser.add_argument(p.flag, action=argparse.BooleanOptionalAction, default=p.default, help=help_text)
        else:
            parser.add_argument(p.flag, type=p.kind, default=p.default, choices=p.choices or None, help=help_text)


def build_parser():
    parser = argparse.ArgumentParser(prog="hsigan", description="HSI-GAN: hyperspectral classification with "
                                     "GAN-augmented spectral-spatial networks, without QGIS.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bar or log")
    common.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    sub = parser.add_subparsers(dest="job", required=True)
    for job, (config_class, text) in JOBS.items():
        _add_options(sub.add_parser(job, help=text, description=text, parents=[common]), config_class)
    sub.add_parser("check", help="Versions, and the device that would be used and why.", parents=[common])
    return parser


def run(job, config, feedback):
    if job == "train":
        from .train import train
        return train(config, feedback)
    if job == "classify":
        from .classify import classify
        return classify(config, feedback)
    if job == "assess":
        from .assess import assess
        return assess(config, feedback)
    if job == "augment":
        from .augment import augment
        return augment(config, feedback)
    if job == "export-onnx":
        from .export_onnx import export_onnx
        return export_onnx(config, feedback)
    raise ValueError(job)


def check_report():
    """Versions of what HSI-GAN needs and the device it would use (for hsigan check / hsigan:check)."""
    from . import __version__
    from .install_torch import packages_dir
    report = {"hsigan": __version__, "python": sys.version.split()[0]}
    for module in ("numpy", "scipy", "rasterio", "torch"):
        try:
            report[module] = __import__(module).__version__
        except ImportError:
            report[module] = None
    try:
        from osgeo import gdal
        report["gdal"] = gdal.__version__
    except ImportError:
        report["gdal"] = None
    if report["torch"]:
        from .device import cuda_status
        available, reason = cuda_status()
        report["device"] = "cuda" if available else "cpu"
        report["device_reason"] = reason
    else:
        report["device"] = None
        report["device_reason"] = "torch is not installed"
    # where hsigan:install_torch puts torch (on sys.path when it exists)
    report["packages_folder"] = packages_dir() if os.path.isdir(packages_dir()) else "none"
    return report


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl+C, so temporary files are removed on the way out
    (a BaseException, so that no `except Exception` of the engine stops it)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame):
    for name in STOP_SIGNALS:  # a second signal must not interrupt the clean-up
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Stopped(signum)


STOP_SIGNALS = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]


def main(argv=None):
    """Runs a job; SIGTERM and SIGHUP stop it as Ctrl+C does (temporary files removed), exit 128 + signal."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {name: signal.signal(getattr(signal, name), _stop) for name in STOP_SIGNALS}
    try:
        return _main(argv)
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def _main(argv):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.job == "check":
        report = check_report()
        print(json.dumps(report, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
        return 0
    config_class = JOBS[args.job][0]
    config = config_class(**{p.field: getattr(args, p.field) for p in cfgs.parameters(config_class)})
    feedback = ConsoleFeedback(quiet=args.quiet)
    try:
        cfgs.check(config)
        result = run(args.job, config, feedback)
    except InputError as error:
        print(f"hsigan {args.job}: error: {error}", file=sys.stderr)
        return 2
    except Cancelled as error:
        print(f"hsigan {args.job}: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"hsigan {args.job}: interrupted; no output was written", file=sys.stderr)
        return 130
    except Stopped as stop:
        print(f"hsigan {args.job}: stopped by {stop}; no output was written", file=sys.stderr)
        return 128 + stop.signum
    except Exception as error:  # out of memory or a diverged GAN: name the parameter; else one line too
        known = translate(error, args.job)
        if known is not None:
            logging.getLogger("hsigan").debug("HSI-GAN failure", exc_info=True)
            print(f"hsigan {args.job}: error: {known}", file=sys.stderr)
            return 2
        if os.environ.get("HSIGAN_DEBUG"):
            raise
        print(f"hsigan {args.job}: failed: {type(error).__name__}: {error} (HSIGAN_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1
    result = as_dict(result)  # every field but the model's or sample file's metadata
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        for key in ("oa", "aa", "kappa"):
            if result.get(key) is not None:
                print(f"{key.upper()}: {result[key]:.4f}" if key == "kappa" else f"{key.upper()}: {result[key]:.2f}")
        for key in ("real_samples", "synthetic_samples"):
            if result.get(key) is not None:
                print(f"{key}: {result[key]}")
        for key in ("output_model", "output", "output_report"):
            if result.get(key):
                print(f"{key}: {result[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
