#!/usr/bin/env python3
"""Writes qgis_models/hsigan_pipeline.model3, the graphical-modeler model shipped with the plugin:

    Augment training samples -> Train classifier from sample file -> Classify raster -> Assess accuracy

Run with the project's venv:  .venv/bin/python scripts/make_model.py
Open the result in QGIS (Processing Toolbox > Models > Open Existing Model) or run it headless:
    bin/qgis-process run qgis_models/hsigan_pipeline.model3 -- raster=scene.tif labels=train.gpkg \
        labels_field=class_name reference=reference.gpkg reference_field=class_name \
        train:Model=model.hsigan classify:Classification=map.tif assess:Accuracy report=report.html
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, "/usr/share/qgis/python/plugins"]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (QgsApplication, QgsProcessing, QgsProcessingModelAlgorithm,  # noqa: E402
                       QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
                       QgsProcessingModelOutput, QgsProcessingModelParameter, QgsProcessingParameterField,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterVectorLayer)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

OUT = os.path.join(ROOT, "qgis_models", "hsigan_pipeline.model3")


def build():
    model = QgsProcessingModelAlgorithm("HSI-GAN pipeline: augment, train, classify, assess", "HSI-GAN",
                                        "hsigan")
    model.setHelpContent({"ALG_DESC": (
        "Enlarges the labelled pixels with synthetic samples from a conditional WGAN-GP (Augment training "
        "samples), trains the spectral-spatial classifier on them (Train classifier from sample file), classifies "
        "the whole raster and assesses the map against independent reference polygons. Outputs: the model "
        "file, the styled classification and the accuracy report (HTML + JSON).")})
    inputs = [
        QgsProcessingParameterRasterLayer("raster", "Hyperspectral raster"),
        QgsProcessingParameterVectorLayer("labels", "Training polygons or points",
                                          [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint]),
        QgsProcessingParameterField("labels_field", "Class field of the training layer",
                                    parentLayerParameterName="labels"),
        QgsProcessingParameterVectorLayer("reference", "Reference polygons or points (not used for training)",
                                          [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint]),
        QgsProcessingParameterField("reference_field", "Class field of the reference layer",
                                    parentLayerParameterName="reference"),
        QgsProcessingParameterNumber("synthetic_per_class", "Synthetic samples per class",
                                     QgsProcessingParameterNumber.Integer, 200, minValue=1),
        QgsProcessingParameterNumber("real_per_class", "Real pixels per class (0 = all)",
                                     QgsProcessingParameterNumber.Integer, 0, minValue=0),
        QgsProcessingParameterNumber("gan_steps", "GAN generator steps", QgsProcessingParameterNumber.Integer,
                                     600, minValue=1),
        QgsProcessingParameterNumber("epochs", "Training epochs", QgsProcessingParameterNumber.Integer, 40,
                                     minValue=1),
    ]
    # QGIS 3.22 lists a model's inputs by name (it keeps no order), and a field input listed above its
    # layer is reset to the layer's first field when the layer is set: so each field input is named after
    # its layer (labels -> labels_field, reference -> reference_field).
    names = [p.name() for p in inputs]
    for parameter in inputs:
        parent = getattr(parameter, "parentLayerParameterName", lambda: "")()
        assert not parent or names.index(parent) < names.index(parameter.name()) and parent < parameter.name()
    for i, parameter in enumerate(inputs):
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, 60 + 70 * i))
        model.addModelParameter(parameter, component)

    def from_input(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def from_child(child, output):
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child, output)]

    def static(value):
        return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]

    def child(child_id, algorithm, description, sources, outputs, position):
        step = QgsProcessingModelChildAlgorithm(algorithm)
        step.setChildId(child_id)
        step.setDescription(description)
        step.setPosition(QPointF(*position))
        for name, source in sources.items():
            step.addParameterSources(name, source)
        # Every other input at its default, written into the model: the modeler's validation (and the
        # model's run dialog) treats a mandatory parameter without a source as unset, even with a default.
        for parameter in step.algorithm().parameterDefinitions():
            if parameter.isDestination() or parameter.name() in sources or parameter.defaultValue() is None:
                continue
            step.addParameterSources(parameter.name(), static(parameter.defaultValue()))
        declared = {}
        for name, label in outputs.items():
            output = QgsProcessingModelOutput(label, label)  # the description is the run dialog's label
            output.setChildId(child_id)
            output.setChildOutputName(name)
            output.setMandatory(True)
            output.setPosition(QPointF(position[0] + 200, position[1] + 40))
            declared[label] = output
        step.setModelOutputs(declared)
        model.addChildAlgorithm(step)

    child("augment", "hsigan:augment", "Augment training samples", {
        "INPUT": from_input("raster"), "LABELS": from_input("labels"), "CLASS_FIELD": from_input("labels_field"),
        "COUNT_PER_CLASS": from_input("synthetic_per_class"), "SAMPLES_PER_CLASS": from_input("real_per_class"),
        "GAN_STEPS": from_input("gan_steps"), "PATCH_SIZE": static(7), "LABEL_RULE": static(0),
        "DEVICE": static(0), "SEED": static(0)}, {}, (480, 120))
    child("train", "hsigan:train_samples", "Train classifier from sample file", {
        "SAMPLES": from_child("augment", "OUTPUT"), "EPOCHS": from_input("epochs"), "GAN": static(0),
        "PATCH_SIZE": static(7), "SAMPLES_PER_CLASS": static(0), "DEVICE": static(0), "SEED": static(0)},
        {"OUTPUT_MODEL": "Model"}, (480, 260))
    child("classify", "hsigan:classify", "Classify raster", {
        "INPUT": from_input("raster"), "MODEL": from_child("train", "OUTPUT_MODEL"), "DEVICE": static(0)},
        {"OUTPUT": "Classification"}, (480, 400))
    child("assess", "hsigan:assess", "Assess classification accuracy", {
        "INPUT": from_child("classify", "OUTPUT"), "REFERENCE": from_input("reference"),
        "CLASS_FIELD": from_input("reference_field"), "LABEL_RULE": static(0)},
        {"OUTPUT_REPORT": "Accuracy report"}, (480, 540))
    return model


def main():
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    from hsigan_qgis import plugin_package
    provider = plugin_package.provider()
    QgsApplication.processingRegistry().addProvider(provider)
    model = build()
    errors = []
    for step in model.childAlgorithms().values():
        if step.algorithm() is None:
            errors.append(step.algorithmId())
    if errors:
        sys.exit(f"unknown algorithms: {errors}")
    valid, problems = model.validate()
    if not valid:
        sys.exit(f"the model does not validate: {problems}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    if not model.toFile(OUT):
        sys.exit(f"could not write {OUT}")
    print(OUT)
    del model
    QgsApplication.processingRegistry().removeProvider(provider)


if __name__ == "__main__":
    main()
