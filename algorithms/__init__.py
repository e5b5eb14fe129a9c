"""QGIS Processing provider and algorithms of HSI-GAN. They translate parameters, feedback and errors
between QGIS and the engine (hsigan_qgis) and hold no science."""
