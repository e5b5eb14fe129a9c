"""At plugin load in desktop QGIS: when torch cannot be imported, a message bar with a button that opens the
'Install PyTorch' dialog (hsigan:install_torch), so that a new user needs no terminal."""
from qgis.core import Qgis

MESSAGE = ("HSI-GAN needs PyTorch for training and classification, and this QGIS's Python does not have it. "
           "Install it here (CPU build, a few hundred MB; a few minutes).")


def offer_installer(message_bar):
    """Push the message when torch is missing; returns the message widget (None when torch is there)."""
    from .hsigan_qgis.install_torch import torch_available
    if torch_available():
        return None
    from qgis.PyQt.QtWidgets import QPushButton

    widget = message_bar.createMessage("HSI-GAN", MESSAGE)
    button = QPushButton("Install PyTorch…", widget)
    button.clicked.connect(lambda: _open_installer(message_bar, widget))
    widget.layout().addWidget(button)
    message_bar.pushWidget(widget, Qgis.Warning)
    return widget


def _open_installer(message_bar, widget):
    import processing
    message_bar.popWidget(widget)
    processing.execAlgorithmDialog("hsigan:install_torch", {})
