"""Each job returns its own small result type (issue 11 item 5); the CLI's --json prints every field of it
but the model's or sample file's metadata."""
import inspect

import pytest

from hsigan_qgis import results


@pytest.mark.parametrize("module, function, kind", [
    ("train", "train", results.TrainResult), ("classify", "classify", results.ClassifyResult),
    ("assess", "assess", results.AssessResult), ("augment", "augment", results.AugmentResult),
    ("export_onnx", "export_onnx", results.ExportOnnxResult), ("install_torch", "install", results.InstallTorchResult)])
def test_each_job_is_annotated_with_its_result_type(module, function, kind):
    import importlib
    job = getattr(importlib.import_module(f"hsigan_qgis.{module}"), function)
    assert inspect.signature(job).return_annotation is kind


def test_as_dict_keeps_every_field_but_the_metadata():
    result = results.AugmentResult(output="s.hsamples", output_report=None, real_samples=3, synthetic_samples=4,
                                   spectral_angle=1.5, separability=None, seconds=2.0, metadata={"big": 1})
    assert results.as_dict(result) == dict(output="s.hsamples", output_report=None, real_samples=3,
                                           synthetic_samples=4, spectral_angle=1.5, separability=None, seconds=2.0)
