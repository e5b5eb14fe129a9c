"""One configuration object per job. The QGIS algorithms and the command line both fill these in, so a
parameter has one name, one label, one default, one help text and one set of bounds (field metadata:
label, help, advanced, choices, minimum, maximum, odd). `parameters` describes the fields for the CLI and
the QGIS dialogs; `check` validates a filled-in config against the same metadata, so the engine, the CLI
and the QGIS dialogs refuse the same values with the same message."""
import math
import numbers
from dataclasses import MISSING, dataclass, field, fields

from .errors import InputError

DEVICES = ("auto", "cpu", "cuda")
GAN_MODES = ("none", "wgan", "ssgan", "auto", "spectral", "mixup", "mixup-if-few")
LABEL_RULES = ("centre", "all_touched")
HEAD_WINDOWS = ("auto", "1x1", "3x3", "5x5")  # SPECTRAL_HEAD_WINDOW: the spectrum the kernel head reads
SMOOTHINGS = ("off", "auto", "3x3", "5x5", "7x7")  # SMOOTHING: the box the class probabilities are averaged over
LABEL_RULE_HELP = ("Which pixels a polygon labels: those whose centre is inside (centre) or every pixel "
                   "it touches (all_touched). Points label the pixel they fall in.")
INT_MAX = 2 ** 31 - 1  # QGIS keeps integer parameters in a C int


def opt(default, help, advanced=False, choices=None, minimum=None, maximum=None, odd=False, label="",
        zero_is_auto=False):
    """An optional field. zero_is_auto: 0 (automatic) is accepted besides minimum..maximum."""
    return field(default=default, metadata=dict(label=label, help=help, advanced=advanced, choices=choices,
                                                 minimum=minimum, maximum=maximum, odd=odd,
                                                 zero_is_auto=zero_is_auto))


def req(help, label=""):
    return field(metadata=dict(label=label, help=help, advanced=False, choices=None, minimum=None, maximum=None,
                               odd=False, zero_is_auto=False))


@dataclass(kw_only=True)
class TrainConfig:
    input: str = opt("", "Hyperspectral raster (any GDAL format; one band per wavelength). Not needed "
                     "with SAMPLES.", label="Hyperspectral raster")
    labels: str = opt("", "Vector layer of labelled polygons or points (any CRS: reprojected to the "
                      "raster's). Not needed with SAMPLES.", label="Label polygons or points")
    class_field: str = opt("", "Attribute holding the class: integer codes or text names. Not needed with "
                           "SAMPLES.", label="Class field")
    output_model: str = req("Model file to write (.hsigan).", label="Model file")
    samples: str = opt("", "Optional training-sample file from hsigan:augment (.hsamples) used instead of "
                       "raster + labels: its real samples train and validate (spatially disjoint blocks of "
                       "their raster positions), its synthetic ones only train.", advanced=True,
                       label="Training samples (instead of raster + labels)")
    class_colours: str = opt("", "Optional class colours as JSON {class id or name: '#rrggbb'}; in QGIS they "
                             "come from the labels layer's categorized style. Others get a fixed palette.",
                             advanced=True, label="Class colours (JSON)")
    class_names: str = opt("", "Optional class names as JSON {class id: name} for an integer class field; in "
                           "QGIS they come from the class name field or the labels layer's categorized style "
                           "on the class field. Classes not named keep their id as name.", advanced=True,
                           label="Class names (JSON)")
    samples_per_class: int = opt(0, "Training pixels drawn per class; 0 uses all labelled pixels (and then the "
                                    "spectral kernel head, after validation, learns the validation pixels too).",
                                 minimum=0, maximum=INT_MAX, label="Training pixels per class (0 = all)")
    patch_size: int = opt(7, "Side of the square neighbourhood the classifier sees, in pixels (odd).",
                          minimum=1, maximum=31, odd=True, label="Patch size (pixels, odd)")
    epochs: int = opt(100, "Passes over the training pixels (fewer when MAX_STEPS caps them).", minimum=1,
                      maximum=10000, label="Epochs")
    gan: str = opt("ssgan", "Synthetic-sample strategy: ssgan (the default: a semi-supervised GAN whose "
                   "discriminator is the classifier, so it also learns from the raster's unlabelled pixels; 550 "
                   "steps whatever the number of labels; with the spectral kernel head +4.3 OA over none on the "
                   "agricultural Indian Pines and +1.4 on an urban scene at 15 pixels per class on the decision "
                   "seeds; 41 s to train there on 2 CPU cores; when the median class has 20 training pixels or "
                   "more and the spectral kernel head's weight is automatic, GAN none trains first and is kept "
                   "where the validation pixels give its head a weight of 0.5 or more, the log and the model say "
                   "which and why; from a sample file, which "
                   "has no unlabelled pixels, none trains instead, with a warning); none (the classifier alone: "
                   "about 3x faster than ssgan); wgan (conditional WGAN-GP augmentation: helped on no "
                   "scene); "
                   "auto (trains none and ssgan, keeps the one with the higher validation OA: the time of both; "
                   "level with ssgan over the seeds benchmarked, ahead of it on the urban scene with many labels; "
                   "needs VALIDATION_FRACTION > 0); spectral (no GAN: synthetic centre spectra drawn "
                   "from a Gaussian per class, pasted into real patches of that class, SYNTHETIC_RATIO per real "
                   "sample; about 2x the time of none; +1 OA on Indian Pines, -1.5 on Berlin: no gain on the mean "
                   "of scenes); mixup (no GAN: synthetic patches each mixed from two labelled patches of the same "
                   "class, lam * A + (1 - lam) * B with lam in 0.2-0.8, drawn afresh every epoch, SYNTHETIC_RATIO "
                   "per real sample (automatic: 2); with about 15 labels per class +0.6 to +2.4 OA over none on an "
                   "agricultural scene and -0.2 to +3.3 on an urban one on three held-out seed sets, 2-3x the "
                   "training time there; with every label -1.1 to -1.6 OA on the agricultural scene); "
                   "mixup-if-few (mixup when the median class has at most 20 training pixels after the "
                   "validation split, otherwise none, so that many labels do not pay mixup's time and loss; on "
                   "ten fresh seeds with 15 labels per class +0.5 OA over none on the mean of three scenes with "
                   "the kernel head, +2.3 without it; the log, the model and the report say which it trained "
                   "and why). See the README, Accuracy.",
                   choices=GAN_MODES,
                   label="GAN mode")
    synthetic_ratio: float = opt(0.0, "Synthetic samples generated per real training sample; used by GAN wgan, "
                                      "spectral and mixup (and mixup-if-few when it trains mixup; none and ssgan "
                                      "ignore it). 0 = automatic: 2 for mixup "
                                      "(2 fresh mixes a real sample each epoch beat 1 in the benchmark), 1 for wgan "
                                      "and spectral.",
                                 advanced=True, minimum=0.0, maximum=20.0,
                                 label="Synthetic samples per real sample (wgan, spectral, mixup; 0 = automatic)")
    gan_steps: int = opt(0, "Generator updates of the GAN; 0 = automatic: 200 for wgan, 550 for ssgan (a fixed "
                            "count, so the cost does not grow with the number of labels).",
                         advanced=True, minimum=0, maximum=INT_MAX, label="GAN generator steps (0 = automatic)")
    pretrain_steps: int = opt(0, "Scene self-supervised pretraining before the labels: steps of masked spectral "
                              "reconstruction (half the bands hidden, the network restores them) on the raster's "
                              "unlabelled pixels, then training on the labels as usual. 0 = off (the default: in the "
                              "three-scene benchmark 300 steps gained 4 OA on the urban Berlin scene but lost 7 on "
                              "Indian Pines, -1 on the mean). A fixed cost (about one classifier step each: 300 "
                              "steps about 11 s of CPU), whatever the number of labels. Needs INPUT and LABELS "
                              "(not SAMPLES). See the README, Accuracy.", advanced=True, minimum=0,
                              maximum=100000, label="Scene pretraining steps (0 = off)")
    spectral_head: bool = opt(True, "Fuse a spectral kernel head with the network: an RBF kernel ridge classifier "
                              "on the training pixels' own spectra or their local means (SPECTRAL_HEAD_WINDOW; gamma, ridge and softmax temperature chosen by "
                              "leave-one-out; at most 1000 pixels, class-stratified, so its cost is bounded), whose "
                              "class probabilities are averaged with the network's (SPECTRAL_HEAD_WEIGHT). In the "
                              "three-scene benchmark: +0.9 to +2.9 OA on the mean of scenes, most on the urban "
                              "Berlin scene (+2.5 to +9). About 0.05-1.2 s of CPU to fit, but classify computes "
                              "1.5-2.8x as much per pixel on a CPU (more labelled pixels, more cost). Off: the "
                              "network alone, the fastest classification. With SAMPLES_PER_CLASS 0 (every "
                              "pixel) the head is fitted again after validation on the training and validation "
                              "pixels together, at the window and weight chosen (+1.0 OA on the mean of scenes on "
                              "fresh seeds, +1.6 on Berlin; the validation figures are those before). See the "
                              "README, Accuracy.",
                              advanced=True, label="Fuse a spectral kernel head")
    spectral_head_weight: float = opt(0.0, "Share of the spectral kernel head in the fused class probabilities. 0 = "
                                      "automatic: 0.3, unless another weight of 0.1, 0.2 ... 0.9 has a clearly lower "
                                      "log-loss on the validation blocks (by 1.64 standard errors, so the more "
                                      "validation pixels, the smaller the difference needed), or, where the log-loss "
                                      "keeps 0.3, is right on clearly more validation pixels (a sign test on the "
                                      "pixels where the two differ, 1.64 again); 0.3 without validation pixels or "
                                      "when 0.3 already classifies every validation pixel correctly. The log and the "
                                      "model say the losses, the counts and which weight. Set a weight to fix it: 0.3 "
                                      "is the safe fixed weight, 0.7-1 suits urban scenes where the head alone beats "
                                      "the network. See the README, Accuracy.",
                                      advanced=True, minimum=0.05, maximum=1.0, zero_is_auto=True,
                                      label="Spectral kernel head weight (0 = automatic)")
    spectral_head_window: str = opt("auto", "Which spectrum the spectral kernel head reads at each pixel: 1x1 (the "
                                    "pixel's own) or the mean spectrum of the 3x3 or 5x5 pixels around it (must fit "
                                    "in PATCH_SIZE). auto: 1x1, unless the fused model with a wider window is right "
                                    "on clearly more validation pixels (a sign test on the pixels where the two "
                                    "disagree, z >= 1.64). Local means can help on scenes of fields with few labels "
                                    "(Indian Pines, 15 px/class, fixed 3x3: +2.1 OA on the decision seeds, +0.4 on "
                                    "held-out ones) and hurt on fine urban scenes (Berlin, 30 m: -9); auto gained "
                                    "nothing on the held-out seeds. The log and the model say which window and why. "
                                    "See the README, Accuracy.",
                                    advanced=True, choices=HEAD_WINDOWS, label="Spectral kernel head window")
    smoothing: str = opt("auto", "Average each pixel's class probabilities over the 3x3, 5x5 or 7x7 pixels around it "
                         "before the most probable class is taken (pixels without data do not vote): a smoother "
                         "map, which suits scenes of fields or parcels larger than the box and blurs small urban "
                         "objects. auto (the default): off, unless a box is right on clearly more validation "
                         "pixels (a sign test on the pixels where the two disagree, z >= 1.64): in the three-scene "
                         "benchmark, on held-out seeds, +2.7 to +4.3 OA on an agricultural scene, never smoothed "
                         "on an urban one (where a fixed 5x5 lost 3-5), +1.2 on the mean of scenes and label "
                         "counts. Classification then reads 1-3 pixels more around each tile (the same map "
                         "whatever the tiles). The log and the model say which box and why. See the README, "
                         "Accuracy.",
                         advanced=True, choices=SMOOTHINGS, label="Smooth the class probabilities")
    max_steps: int = opt(1000, "Cap on the classifier's optimiser steps (batches) with GAN none or wgan: with "
                         "many labels EPOCHS is lowered so that the training cost stops growing with them "
                         "(0 = no cap). 1000 steps are 100 epochs of up to 640 labelled pixels.", advanced=True,
                         minimum=0, maximum=INT_MAX, label="Classifier step cap (0 = none)")
    class_balanced: bool = opt(True, "Show the classifier every class equally often (labelled pixels drawn "
                               "class-balanced) rather than every pixel once. On Indian Pines it kept ssgan's "
                               "overall accuracy (OA) and raised its average accuracy (AA) by 2-14 points; "
                               "with GAN none it cost 2 OA points at 15 pixels per class (README, accuracy "
                               "table).", advanced=True, label="Show every class equally often")
    batch_size: int = opt(64, "Training batch size.", advanced=True, minimum=2, maximum=4096, label="Batch size")
    learning_rate: float = opt(1e-3, "Adam learning rate of the classifier.", advanced=True,
                               minimum=1e-6, maximum=1.0, label="Learning rate")
    validation_fraction: float = opt(0.2, "Share of spatial blocks held out for validation (0 = none).",
                                     advanced=True, minimum=0.0, maximum=0.9,
                                     label="Validation share of spatial blocks")
    block_size: int = opt(16, "Side of the spatial blocks used for the validation split, in pixels.",
                          advanced=True, minimum=2, maximum=INT_MAX, label="Validation block size (pixels)")
    label_rule: str = opt("centre", LABEL_RULE_HELP, advanced=True, choices=LABEL_RULES,
                          label="Polygon rasterisation rule")
    output_report: str = opt("", "Optional HTML training report (curves, validation confusion matrix) "
                             "with a JSON twin.", label="Training report")
    device: str = opt("auto", "Where torch computes: auto (CUDA when available), cpu or cuda.",
                      choices=DEVICES, label="Device")
    seed: int = opt(0, "Random seed; the same seed on the same device (on CPU: with the same number of "
                   "torch threads) gives the same model.", minimum=0, maximum=INT_MAX, label="Random seed")


@dataclass
class AugmentConfig:
    input: str = req("Hyperspectral raster (any GDAL format; one band per wavelength).", label="Hyperspectral raster")
    labels: str = req("Vector layer of labelled polygons or points (any CRS: reprojected to the raster's).",
                      label="Label polygons or points")
    class_field: str = req("Attribute holding the class: integer codes or text names.", label="Class field")
    output: str = req("Training-sample file to write (.hsamples: zip of metadata.json and .npy arrays).",
                      label="Training samples")
    count_per_class: int = opt(200, "Synthetic labelled samples drawn per class (typical: 1-4 times the real "
                               "samples per class).", minimum=1, maximum=100000, label="Synthetic samples per class")
    samples_per_class: int = opt(0, "Real labelled pixels kept per class; 0 keeps all.", minimum=0, maximum=INT_MAX,
                                 label="Real pixels kept per class (0 = all)")
    patch_size: int = opt(7, "Side of the square patch stored per sample, in pixels (odd; train may use a "
                          "smaller one).", minimum=1, maximum=31, odd=True, label="Patch size (pixels, odd)")
    gan_steps: int = opt(200, "Generator updates of the conditional WGAN-GP (typical 300-2000; more is "
                         "slower and usually more faithful).", advanced=True, minimum=1, maximum=INT_MAX,
                         label="GAN generator steps")
    label_rule: str = opt("centre", LABEL_RULE_HELP, advanced=True, choices=LABEL_RULES,
                          label="Polygon rasterisation rule")
    output_report: str = opt("", "Optional HTML report comparing real and synthetic spectra per class, with "
                             "fidelity figures and a JSON twin.", label="Real vs synthetic report")
    class_colours: str = opt("", "Optional class colours as JSON {class id or name: '#rrggbb'}.",
                             advanced=True, label="Class colours (JSON)")
    device: str = opt("auto", "Where torch computes: auto (CUDA when available), cpu or cuda.",
                      choices=DEVICES, label="Device")
    seed: int = opt(0, "Random seed; the same seed on the same device gives the same samples.",
                    minimum=0, maximum=INT_MAX, label="Random seed")


@dataclass
class ClassifyConfig:
    input: str = req("Hyperspectral raster to classify (same bands as the model's training raster).",
                     label="Hyperspectral raster")
    model: str = req("Model file written by hsigan:train (.hsigan).", label="Model file")
    output: str = req("Classification raster to write: .tif (GeoTIFF, the default), .img, .ers, .mrf or "
                      ".pix.", label="Classification")
    output_confidence: str = opt("", "Optional raster of the winning class probability (0-1).", label="Confidence")
    output_probabilities: str = opt("", "Optional raster with one probability band per class.",
                                    advanced=True, label="Class probabilities")
    tile_size: int = opt(0, "Side of the tiles processed at once, in pixels; memory grows with it. 0 = "
                         "automatic: about 256 on a CPU, 512 on a GPU, rounded to the file's blocks, so every "
                         "block is read once.", advanced=True, minimum=16, maximum=8192, zero_is_auto=True,
                         label="Tile size (pixels, 0 = automatic)")
    batch_size: int = opt(4, "Tiles predicted together (more helps a GPU).", advanced=True,
                          minimum=1, maximum=256, label="Tiles per batch")
    tta: bool = opt(False, "Test-time augmentation: average the class probabilities over the 8 flips/rotations "
                    "of each tile (+0.26 OA on the mean of three scenes, up to +1.6 on one; 8x the classifier's "
                    "compute: small beside reading the raster on a GPU, about 6x the time of a CPU run). Off by "
                    "default for that CPU cost; worth turning on with a GPU.",
                    advanced=True, label="Average over flips/rotations (TTA)")
    cog: bool = opt(False, "Write a cloud-optimised GeoTIFF.", advanced=True, label="Cloud-optimised GeoTIFF")
    dask: str = opt("", "Optional Dask cluster to classify on: tcp://host:8786 (a running dask scheduler; "
                    "workers must see the raster and the model at the same paths) or local:N (N worker "
                    "processes on this machine). Empty: this process alone. Needs dask.distributed "
                    "(pip install 'dask[distributed]').", advanced=True,
                    label="Dask cluster (tcp://host:port or local:N)")
    device: str = opt("auto", "Where torch computes: auto (CUDA when available), cpu or cuda.",
                      choices=DEVICES, label="Device")


@dataclass
class AssessConfig:
    input: str = req("Classification raster (from hsigan:classify or any integer class map).",
                     label="Classification map")
    reference: str = req("Reference polygons or points, spatially disjoint from the training data.",
                         label="Reference polygons or points")
    class_field: str = req("Attribute of the reference holding the class (ids or names as in training).",
                           label="Class field")
    output_report: str = opt("", "HTML report to write (a JSON twin is written beside it).", label="Accuracy report")
    label_rule: str = opt("centre", LABEL_RULE_HELP, advanced=True, choices=LABEL_RULES,
                          label="Polygon rasterisation rule")


@dataclass
class ExportOnnxConfig:
    model: str = req("Model file written by hsigan:train (.hsigan).", label="Model file")
    output: str = req("ONNX model to write (.onnx), with the metadata the Deepness plugin reads.",
                      label="ONNX model")
    tile_size: int = opt(256, "Side of the square tiles the ONNX model takes, in pixels (fixed in the file; "
                         "Deepness cuts the raster into tiles of this size).", minimum=16, maximum=4096,
                         label="Tile size (pixels)")
    resolution: float = opt(0.0, "Pixel size of the training raster in centimetres, written as Deepness's "
                            "'resolution' (Deepness resamples rasters to it); 0 leaves it out, and Deepness "
                            "then takes the resolution set in its dialog.", advanced=True, minimum=0.0, maximum=1e9,
                            label="Resolution (cm per pixel, 0 = unset)")


@dataclass
class InstallTorchConfig:
    variant: str = opt("auto", "Which PyTorch build: auto (CUDA when an NVIDIA GPU is found, else CPU), cpu "
                       "(a few hundred MB) or cuda (NVIDIA GPUs; several GB). macOS always gets PyPI's build.",
                       choices=("auto", "cpu", "cuda"), label="PyTorch build")
    source: str = opt("pytorch", "Where pip takes torch from: pytorch (PyTorch's own wheel index for the "
                      "chosen build, which serves its dependencies too) or pip (pip's own settings: PyPI or the "
                      "mirror in your pip.conf).", advanced=True, choices=("pytorch", "pip"), label="Package source")
    torch_version: str = opt("", "torch version to install, e.g. 2.13.0; empty installs the newest one for "
                             "this Python.", advanced=True, label="torch version")


@dataclass(frozen=True)
class Parameter:
    """One config field as the CLI and QGIS see it."""
    field: str
    default: object  # dataclasses.MISSING for a required field
    kind: type  # str, int, float or bool
    label: str
    help: str
    advanced: bool
    choices: tuple
    minimum: object
    maximum: object
    odd: bool
    zero_is_auto: bool = False

    @property
    def lowest(self):
        """The smallest value accepted (0 where 0 means automatic): QGIS's range starts there."""
        return 0 if self.zero_is_auto else self.minimum

    @property
    def qgis_name(self):
        return self.field.upper()

    @property
    def flag(self):
        return "--" + self.field.replace("_", "-")

    @property
    def required(self):
        return self.default is MISSING

    @property
    def is_option(self):
        """A number, yes/no or choice (the rest are paths and texts)."""
        return self.kind is not str or bool(self.choices)

    def bounds_text(self):
        low, high = self.minimum, self.maximum
        what = "an odd number" if self.odd else "a whole number" if self.kind is int else "a number"
        if self.zero_is_auto:
            what = "0 (automatic) or " + what
        if low is not None and high is not None and high != INT_MAX:
            return f"{what} from {low} to {high}"
        if low is not None:
            return f"{what} of at least {low}"
        return what

    def problem(self, value):
        """Why `value` is not acceptable for this field, or None."""
        if self.choices:
            if value not in self.choices:
                return f"'{value}' is not one of {', '.join(self.choices)}"
            return None
        if self.kind is bool:
            return None if isinstance(value, bool) else f"'{value}' is not a yes/no value; use true or false"
        if self.kind is str:
            return None if isinstance(value, str) else f"'{value}' is not a text"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
                self.kind is int and not isinstance(value, numbers.Integral)) or not math.isfinite(value):
            return f"'{value}' is not {self.bounds_text()}"
        if self.zero_is_auto and value == 0:
            return None
        if ((self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum)
                or (self.odd and int(value) % 2 == 0)):
            hint = f"; the default is {self.default}" if not self.required else ""
            return f"{value} is not {self.bounds_text()}{hint}"
        return None


def parameters(config_class):
    """The fields of a config class, in order, as Parameters (for the CLI, the QGIS dialogs and `check`)."""
    kinds = {"str": str, "int": int, "float": float, "bool": bool}
    out = []
    for f in fields(config_class):
        m = f.metadata
        kind = kinds[f.type] if isinstance(f.type, str) else f.type
        out.append(Parameter(field=f.name, default=f.default, kind=kind, label=m["label"], help=m["help"],
                             advanced=m["advanced"], choices=tuple(m["choices"] or ()), minimum=m["minimum"],
                             maximum=m["maximum"], odd=m["odd"], zero_is_auto=m.get("zero_is_auto", False)))
    return out


def parameter(config_class, name):
    for p in parameters(config_class):
        if p.field == name:
            return p
    raise KeyError(name)


def check(cfg):
    """InputError naming the first field of `cfg` whose value is out of its range, not odd where it must be,
    not one of its choices or of the wrong type."""
    for p in parameters(type(cfg)):
        problem = p.problem(getattr(cfg, p.field))
        if problem:
            raise InputError(p.qgis_name, problem)
