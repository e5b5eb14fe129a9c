"""What each job returns: one small dataclass per job, read by attribute in the QGIS algorithms, the CLI
(--json prints every field but the model/sample metadata) and the tests. Paths of optional outputs that
were not asked for are None."""
from dataclasses import dataclass, field, fields
from typing import List, Optional


def as_dict(result, skip=("metadata",)) -> dict:
    """{field: value} of a result (shallow: the metadata dict is not copied), without `skip`."""
    return {f.name: getattr(result, f.name) for f in fields(result) if f.name not in skip}


@dataclass
class TrainResult:
    output_model: str
    output_report: Optional[str]
    oa: Optional[float]  # validation figures on the held-out blocks; None without validation pixels
    aa: Optional[float]
    kappa: Optional[float]
    train_pixels: int
    validation_pixels: int
    seconds: float
    metadata: dict = field(repr=False)  # as written into the model file
    gan_chosen: Optional[str] = None  # auto: the candidate kept; mixup-if-few: mixup or none; ssgan: none or ssgan


@dataclass
class ClassifyResult:
    output: str
    output_confidence: Optional[str]
    output_probabilities: Optional[str]
    seconds: float
    read_seconds: float  # summed over the reading threads (overlapped with computing)
    class_ids: List[int]
    class_names: List[str]
    class_colours: List[str]
    device: str
    read_threads: int


@dataclass
class AssessResult:
    oa: float
    aa: float
    kappa: float
    pixels: int
    unclassified_reference_pixels: int
    class_ids: list  # None for the "(other)" column of map values outside the reference's classes
    class_names: List[str]
    confusion: List[List[int]]
    producers_accuracy: list
    users_accuracy: list
    f1: list
    support: List[int]
    map: str
    reference: str
    output_report: Optional[str] = None


@dataclass
class AugmentResult:
    output: str
    output_report: Optional[str]
    real_samples: int
    synthetic_samples: int
    spectral_angle: Optional[float]  # mean over classes, degrees
    separability: Optional[float]  # mean real-vs-synthetic classifier accuracy, %
    seconds: float
    metadata: dict = field(repr=False)  # as written into the sample file


@dataclass
class ExportOnnxResult:
    output: str
    tile_size: int
    halo: int
    bands: int
    class_ids: List[int]
    class_names: List[str]
    opset: int


@dataclass
class InstallTorchResult:
    folder: str
    torch_version: str
    build: str
    cuda_available: bool
    python: str
    seconds: float
    megabytes: float
