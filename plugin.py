"""The plugin object: registers the Processing provider (also when QGIS runs without a GUI)."""
from qgis.core import QgsApplication


class HsiGanPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802
        from .algorithms.provider import HsiGanProvider
        if self.provider is None:
            self.provider = HsiGanProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is not None:
            from .torch_prompt import offer_installer
            offer_installer(self.iface.messageBar())

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
