"""One configuration object per job. The QGIS algorithms and the command line both fill these in, so a
parameter has one name, one default and one help text (field metadata: help, advanced, choices)."""
from dataclasses import dataclass, field, fields

DEVICES = ("auto", "cpu", "cuda")
GAN_MODES = ("none", "wgan", "ssgan")
LABEL_RULES = ("centre", "all_touched")
LABEL_RULE_HELP = ("Which pixels a polygon labels: those whose centre is inside (centre) or every pixel "
                   "it touches (all_touched). Points label the pixel they fall in.")


def opt(default, help, advanced=False, choices=None, minimum=None, maximum=None):
    return field(default=default, metadata=dict(help=help, advanced=advanced, choices=choices,
                                                 minimum=minimum, maximum=maximum))


def req(help):
    return field(metadata=dict(help=help, advanced=False, choices=None, minimum=None, maximum=None))


@dataclass(kw_only=True)
class TrainConfig:
    input: str = opt("", "Hyperspectral raster (any GDAL format; one band per wavelength). Not needed "
                     "with SAMPLES.")
    labels: str = opt("", "Vector layer of labelled polygons or points (any CRS: reprojected to the "
                      "raster's). Not needed with SAMPLES.")
    class_field: str = opt("", "Attribute holding the class: integer codes or text names. Not needed with "
                           "SAMPLES.")
    output_model: str = req("Model file to write (.hsigan).")
    samples: str = opt("", "Optional training-sample file from hsigan:augment (.hsamples) used instead of "
                       "raster + labels: its real samples train and validate (spatially disjoint blocks of "
                       "their raster positions), its synthetic ones only train.")
    class_colours: str = opt("", "Optional class colours as JSON {class id or name: '#rrggbb'}; in QGIS they "
                             "come from the labels layer's categorized style. Others get a fixed palette.",
                             advanced=True)
    samples_per_class: int = opt(0, "Training pixels drawn per class; 0 uses all labelled pixels.", minimum=0)
    patch_size: int = opt(7, "Side of the square neighbourhood the classifier sees, in pixels (odd).",
                          minimum=1, maximum=31)
    epochs: int = opt(100, "Passes over the training pixels.", minimum=1, maximum=10000)
    gan: str = opt("ssgan", "Synthetic-sample strategy: none; wgan (conditional WGAN-GP augmentation); "
                   "ssgan (semi-supervised GAN using the raster's unlabelled pixels).", choices=GAN_MODES)
    synthetic_ratio: float = opt(1.0, "Synthetic samples generated per real training sample (wgan).",
                                 advanced=True, minimum=0.0, maximum=20.0)
    gan_steps: int = opt(0, "Generator updates of the GAN; 0 = automatic: 200 for wgan, for ssgan at least "
                            "800 and at least EPOCHS passes over the training pixels.", advanced=True, minimum=0)
    class_balanced: bool = opt(True, "Show the classifier every class equally often (labelled pixels drawn "
                               "class-balanced) rather than every pixel once. On Indian Pines it kept ssgan's "
                               "overall accuracy (OA) and raised its average accuracy (AA) by 2-14 points; "
                               "with GAN none it cost 2 OA points at 15 pixels per class (README, accuracy "
                               "table).", advanced=True)
    batch_size: int = opt(64, "Training batch size.", advanced=True, minimum=2, maximum=4096)
    learning_rate: float = opt(1e-3, "Adam learning rate of the classifier.", advanced=True,
                               minimum=1e-6, maximum=1.0)
    validation_fraction: float = opt(0.2, "Share of spatial blocks held out for validation (0 = none).",
                                     advanced=True, minimum=0.0, maximum=0.9)
    block_size: int = opt(16, "Side of the spatial blocks used for the validation split, in pixels.",
                          advanced=True, minimum=2)
    label_rule: str = opt("centre", LABEL_RULE_HELP, advanced=True, choices=LABEL_RULES)
    output_report: str = opt("", "Optional HTML training report (curves, validation confusion matrix) "
                             "with a JSON twin.")
    device: str = opt("auto", "Where torch computes: auto (CUDA when available), cpu or cuda.",
                      choices=DEVICES)
    seed: int = opt(0, "Random seed; the same seed on the same device (on CPU: with the same number of "
                   "torch threads) gives the same model.", minimum=0)


@dataclass
class AugmentConfig:
    input: str = req("Hyperspectral raster (any GDAL format; one band per wavelength).")
    labels: str = req("Vector layer of labelled polygons or points (any CRS: reprojected to the raster's).")
    class_field: str = req("Attribute holding the class: integer codes or text names.")
    output: str = req("Training-sample file to write (.hsamples: zip of metadata.json and .npy arrays).")
    count_per_class: int = opt(200, "Synthetic labelled samples drawn per class (typical: 1-4 times the real "
                               "samples per class).", minimum=1, maximum=100000)
    samples_per_class: int = opt(0, "Real labelled pixels kept per class; 0 keeps all.", minimum=0)
    patch_size: int = opt(7, "Side of the square patch stored per sample, in pixels (odd; train may use a "
                          "smaller one).", minimum=1, maximum=31)
    gan_steps: int = opt(200, "Generator updates of the conditional WGAN-GP (typical 300-2000; more is "
                         "slower and usually more faithful).", advanced=True, minimum=1)
    label_rule: str = opt("centre", LABEL_RULE_HELP, advanced=True, choices=LABEL_RULES)
    output_report: str = opt("", "Optional HTML report comparing real and synthetic spectra per class, with "
                             "fidelity figures and a JSON twin.")
    class_colours: str = opt("", "Optional class colours as JSON {class id or name: '#rrggbb'}.",
                             advanced=True)
    device: str = opt("auto", "Where torch computes: auto (CUDA when available), cpu or cuda.",
                      choices=DEVICES)
    seed: int = opt(0, "Random seed; the same seed on the same device gives the same samples.", minimum=0)


@dataclass
class ClassifyConfig:
    input: str = req("Hyperspectral raster to classify (same bands as the model's training raster).")
    model: str = req("Model file written by hsigan:train (.hsigan).")
    output: str = req("Classification raster to write: .tif (GeoTIFF, the default), .img, .ers, .mrf or "
                      ".pix.")
    output_confidence: str = opt("", "Optional raster of the winning class probability (0-1).")
    output_probabilities: str = opt("", "Optional raster with one probability band per class.",
                                    advanced=True)
    tile_size: int = opt(256, "Side of the tiles processed at once, in pixels; memory grows with it.",
                         advanced=True, minimum=16, maximum=8192)
    batch_size: int = opt(4, "Tiles predicted together (more helps a GPU).", advanced=True,
                          minimum=1, maximum=256)
    cog: bool = opt(False, "Write a cloud-optimised GeoTIFF.", advanced=True)
    device: str = opt("auto", "Where torch computes: auto (CUDA when available), cpu or cuda.",
                      choices=DEVICES)


@dataclass
class AssessConfig:
    input: str = req("Classification raster (from hsigan:classify or any integer class map).")
    reference: str = req("Reference polygons or points, spatially disjoint from the training data.")
    class_field: str = req("Attribute of the reference holding the class (ids or names as in training).")
    output_report: str = opt("", "HTML report to write (a JSON twin is written beside it).")
    label_rule: str = opt("centre", LABEL_RULE_HELP, advanced=True, choices=LABEL_RULES)


def describe(config_class):
    """(name, default, metadata) for each field, for the CLI and the QGIS dialogs."""
    return [(f.name, f.default, f.metadata) for f in fields(config_class)]
