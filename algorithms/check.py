"""hsigan:check"""
from qgis.core import QgsProcessingOutputString

from .base import HsiGanAlgorithm, install_hint


class CheckAlgorithm(HsiGanAlgorithm):
    NAME, LABEL = "check", "Check installation"
    NEEDS = ()
    HELP = ("Reports the versions of what HSI-GAN needs (PyTorch, numpy, scipy, rasterio, GDAL), which device "
            "training and classification would use and why, and how to install anything missing. Takes no "
            "parameters and needs no PyTorch. <b>Outputs</b>: REPORT (text) and DEVICE (cpu, cuda or none).")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addOutput(QgsProcessingOutputString("REPORT", "Report"))
        self.addOutput(QgsProcessingOutputString("DEVICE", "Device"))

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.cli import check_report

        report = check_report()
        missing = [k for k, v in report.items() if v is None and k not in ("device",)]
        for key, value in report.items():
            feedback.pushInfo(f"{key}: {value if value is not None else 'MISSING'}")
        if missing:
            feedback.reportError(f"Missing: {', '.join(missing)}. Install with: {install_hint()}", fatalError=False)
        text = "; ".join(f"{k}={v}" for k, v in report.items())
        return {"REPORT": text, "DEVICE": report["device"] or "none"}
