"""Loads a .model3 in an in-process QGIS with the HSI-GAN provider and prints the modeler's own validation
(QgsProcessingModelAlgorithm.validate): exit 0 when valid, 1 with the messages when not. No torch needed.
  python3 scripts/qgis340/validate_model.py qgis_models/hsigan_pipeline.model3"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(path):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path[:0] = [ROOT, "/usr/share/qgis/python/plugins"]
    from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    from hsigan_qgis import plugin_package
    provider = plugin_package.provider()  # held: a provider whose Python object is collected cannot create algorithms
    QgsApplication.processingRegistry().addProvider(provider)
    model = QgsProcessingModelAlgorithm()
    if not model.fromFile(path):
        print(f"cannot read {path}")
        return 1
    valid, errors = model.validate()
    print(f"{model.name()}: {'valid' if valid else 'INVALID'}" + "".join(f"\n  {e}" for e in errors))
    del model
    QgsApplication.processingRegistry().removeProvider(provider)
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
