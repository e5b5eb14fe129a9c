"""What every HSI-GAN algorithm shares: parameters made from the engine's config fields (one name, one
default, one help text), QGIS feedback as engine feedback, engine errors as QgsProcessingException, and
the check that PyTorch can be imported."""
import logging
import os
import sys
import traceback
from dataclasses import MISSING, fields

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterBoolean,
                       QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterNumber)

from hsigan_qgis.errors import Cancelled, InputError, translate
from hsigan_qgis.feedback import Feedback

log = logging.getLogger("hsigan")


class QgisFeedback(Feedback):
    def __init__(self, feedback):
        self.feedback = feedback

    def progress(self, percent):
        self.feedback.setProgress(percent)

    def info(self, message):
        self.feedback.pushInfo(message)

    def warning(self, message):
        self.feedback.reportError("Warning: " + message, fatalError=False)

    def is_canceled(self):
        return self.feedback.isCanceled()


def install_hint():
    """The command that installs torch for the Python this QGIS runs."""
    if sys.platform.startswith("win"):
        return "in the OSGeo4W Shell: python -m pip install torch"
    python = "/usr/bin/python3" if sys.platform.startswith("linux") else "python3"
    return f"{python} -m pip install --user 'numpy<2' torch (or run setup.sh from the HSI-GAN repository)"


def require(modules=("torch", "rasterio", "scipy", "numpy")):
    missing = []
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise QgsProcessingException(
            f"HSI-GAN needs {', '.join(missing)}, which QGIS's Python cannot import. Install with: "
            f"{install_hint()}; then restart QGIS.")


class HsiGanAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, LABEL, GROUP, HELP and CONFIG, define initAlgorithm and execute()."""
    NAME = LABEL = HELP = ""
    GROUP = "Hyperspectral classification"
    CONFIG = None
    NEEDS = ("torch", "rasterio", "scipy", "numpy")

    def __init__(self):
        super().__init__()
        self._help = []

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.LABEL

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802
        return "hyperspectral"

    def createInstance(self):  # noqa: N802
        return type(self)()

    def shortHelpString(self):  # noqa: N802
        self._help = []
        self.initAlgorithm({})
        items = "".join(f"<li><b>{label}</b>: {text}</li>" for label, text in self._help)
        return f"{self.HELP}<ul>{items}</ul>"

    # -- parameters from config fields ------------------------------------------------------------
    def field_meta(self, field):
        for f in fields(self.CONFIG):
            if f.name == field:
                return (None if f.default is MISSING else f.default), f.metadata
        raise KeyError(field)

    def add(self, parameter, help_text=None, advanced=False):
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        if help_text:
            if hasattr(parameter, "setHelp"):
                parameter.setHelp(help_text)
            self._help.append((parameter.description(), help_text))
        self.addParameter(parameter)

    def add_from_config(self, name, field, label):
        """Number, boolean or choice parameter with the config field's default, range and help."""
        default, meta = self.field_meta(field)
        if meta["choices"]:
            parameter = QgsProcessingParameterEnum(name, label, options=list(meta["choices"]),
                                                   defaultValue=list(meta["choices"]).index(default))
        elif isinstance(default, bool):
            parameter = QgsProcessingParameterBoolean(name, label, defaultValue=default)
        else:
            kind = QgsProcessingParameterNumber.Double if isinstance(default, float) else QgsProcessingParameterNumber.Integer
            parameter = QgsProcessingParameterNumber(name, label, kind, defaultValue=default)
            if meta["minimum"] is not None:
                parameter.setMinimum(meta["minimum"])
            if meta["maximum"] is not None:
                parameter.setMaximum(meta["maximum"])
        self.add(parameter, meta["help"], meta["advanced"])

    def value_of(self, parameters, name, field, context):
        """The config value of a parameter added with add_from_config."""
        default, meta = self.field_meta(field)
        if meta["choices"]:
            return meta["choices"][self.parameterAsEnum(parameters, name, context)]
        if isinstance(default, bool):  # QGIS itself takes any text for a boolean (as false)
            raw = parameters.get(name)
            if isinstance(raw, str) and raw.strip().lower() not in ("true", "false", "yes", "no", "1", "0", ""):
                raise InputError(name, f"'{raw}' is not a yes/no value; use true or false")
            return self.parameterAsBoolean(parameters, name, context)
        if isinstance(default, float):
            return self.parameterAsDouble(parameters, name, context)
        return self.parameterAsInt(parameters, name, context)

    # -- running ----------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        require(self.NEEDS)
        try:
            return self.execute(parameters, context, feedback, QgisFeedback(feedback))
        except InputError as error:
            raise QgsProcessingException(str(error))
        except Cancelled as error:
            raise QgsProcessingException(str(error))
        except QgsProcessingException:
            raise
        except Exception as error:  # an engine fault: short message for the user, traceback at debug level
            log.debug("HSI-GAN failure", exc_info=True)
            if os.environ.get("HSIGAN_DEBUG"):  # qgis_process prints debug info, so only when asked for
                feedback.pushDebugInfo(traceback.format_exc())
            known = translate(error, self.NAME)  # out of memory, a diverged GAN: say which parameter to change
            if known is not None:
                raise QgsProcessingException(str(known))
            raise QgsProcessingException(f"{self.LABEL} failed: {type(error).__name__}: {error}")

    def check_written(self, parameters, context, written, layers):
        """Refuses outputs ([(parameter, path)], sidecars and twins included) that would replace a file of
        the layers given as `layers` (parameter names), as the user chose them: QGIS hands the engine a
        temporary copy of a layer in another format (GeoJSON labels become a GeoPackage), so only here
        is the original file known."""
        from hsigan_qgis.input_files import check_outputs
        sources = []
        for name in layers:
            layer = self.parameterAsLayer(parameters, name, context)
            if layer is not None:
                sources.append(layer.source())
        check_outputs([(p, path) for p, path in written if path], sources)

    def execute(self, parameters, context, feedback, engine_feedback):
        raise NotImplementedError
