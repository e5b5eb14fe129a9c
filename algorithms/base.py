"""What every HSI-GAN algorithm shares: parameters made from the engine's config fields (one name, one
default, one help text), QGIS feedback as engine feedback, engine errors as QgsProcessingException, and
the check that PyTorch can be imported."""
import logging
import os
import traceback

from qgis.core import (QgsProcessing, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingParameterBoolean, QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterField, QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterVectorLayer)

from ..hsigan_qgis.config import parameter as config_parameter, parameters as parameters_of
from ..hsigan_qgis.errors import Cancelled, InputError, translate
from ..hsigan_qgis.feedback import Feedback

from .parameter_names import with_labels

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
    """How to install torch for the Python this QGIS runs: the plugin's own installer."""
    return ("the 'Install PyTorch' algorithm (hsigan:install_torch; Processing Toolbox > HSI-GAN > Set-up), "
            "no terminal needed")


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
        ids = {p.description(): p.name() for p in self.parameterDefinitions()}
        items = "".join(f"<li><b>{label}</b> ({ids.get(label, '')}): {with_labels(text, self)}</li>"
                        for label, text in self._help)
        return f"{with_labels(self.HELP, self)}<ul>{items}</ul>"

    # -- parameters from config fields ------------------------------------------------------------
    def spec(self, field):
        """The config field `field` as a config.Parameter (QGIS name, label, default, help, bounds)."""
        return config_parameter(self.CONFIG, field)

    def add(self, parameter, help_text=None, advanced=False):
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        if help_text:
            if hasattr(parameter, "setHelp"):
                parameter.setHelp(help_text)
            self._help.append((parameter.description(), help_text))
        self.addParameter(parameter)

    def add_field(self, parameter_class, field, *args, **kwargs):
        """A layer, file or destination parameter named, labelled and explained by the config field."""
        p = self.spec(field)
        self.add(parameter_class(p.qgis_name, p.label, *args, **kwargs), p.help, p.advanced)

    def add_raster_and_labels(self, layer, optional=False):
        """INPUT (the raster), the polygon or point layer of config field `layer` (labels or reference) and
        its CLASS_FIELD: the first three parameters of train, augment and assess."""
        self.add_field(QgsProcessingParameterRasterLayer, "input", optional=optional)
        self.add_field(QgsProcessingParameterVectorLayer, layer,
                       [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint], optional=optional)
        self.add_field(QgsProcessingParameterField, "class_field", parentLayerParameterName=self.spec(layer).qgis_name,
                       type=QgsProcessingParameterField.Any, optional=optional)

    def add_options(self, skip=()):
        """A number, boolean or choice parameter for every such field of the config (but those in `skip`), in
        its order, with the field's name (upper case), label, default, range and help."""
        for p in parameters_of(self.CONFIG):
            if not p.is_option or p.field in skip:
                continue
            if p.choices:
                parameter = QgsProcessingParameterEnum(p.qgis_name, p.label, options=list(p.choices),
                                                       defaultValue=p.choices.index(p.default))
            elif p.kind is bool:
                parameter = QgsProcessingParameterBoolean(p.qgis_name, p.label, defaultValue=p.default)
            else:
                kind = QgsProcessingParameterNumber.Double if p.kind is float else QgsProcessingParameterNumber.Integer
                parameter = QgsProcessingParameterNumber(p.qgis_name, p.label, kind, defaultValue=p.default)
                if p.lowest is not None:
                    parameter.setMinimum(p.lowest)
                if p.maximum is not None:
                    parameter.setMaximum(p.maximum)
            self.add(parameter, p.help, p.advanced)

    def option_values(self, parameters, context, skip=()):
        """{field: value} of the parameters made by add_options."""
        return {p.field: self._value(p, parameters, context) for p in parameters_of(self.CONFIG)
                if p.is_option and p.field not in skip}

    def _value(self, p, parameters, context):
        if p.choices:
            return p.choices[self.parameterAsEnum(parameters, p.qgis_name, context)]
        if p.kind is bool:  # QGIS itself takes any text for a boolean (as false)
            raw = parameters.get(p.qgis_name)
            if isinstance(raw, str) and raw.strip().lower() not in ("true", "false", "yes", "no", "1", "0", ""):
                raise InputError(p.qgis_name, f"'{raw}' is not a yes/no value; use true or false")
            return self.parameterAsBoolean(parameters, p.qgis_name, context)
        if p.kind is float:
            return self.parameterAsDouble(parameters, p.qgis_name, context)
        return self.parameterAsInt(parameters, p.qgis_name, context)

    def checkParameterValues(self, parameters, context):  # noqa: N802
        """QGIS's own checks (ranges, required layers), then the engine's (config.check: odd sizes, ...), so
        the dialog refuses a bad value before the run, with the message the CLI and the engine give."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        return self.check_options(parameters, context)

    def check_options(self, parameters, context):
        """The engine's check (config.check's rules) of the option parameters given."""
        if self.CONFIG is None:
            return True, ""
        for p in parameters_of(self.CONFIG):
            if not p.is_option or parameters.get(p.qgis_name) is None:
                continue
            try:
                problem = p.problem(self._value(p, parameters, context))
            except InputError as error:
                return False, with_labels(str(error), self, error.parameter)
            if problem:
                return False, with_labels(f"{p.qgis_name}: {problem}", self, p.qgis_name)
        return True, ""

    # -- running ----------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        require(self.NEEDS)
        try:
            return self.execute(parameters, context, feedback, QgisFeedback(feedback))
        except InputError as error:  # "Dialog label (ID): message"
            raise QgsProcessingException(with_labels(str(error), self, error.parameter))
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
                raise QgsProcessingException(with_labels(str(known), self, known.parameter))
            raise QgsProcessingException(f"{self.LABEL} failed: {type(error).__name__}: {error}")

    def check_written(self, parameters, context, written, layers):
        """Refuses outputs ([(parameter, path)], sidecars and twins included) that would replace a file of
        the layers given as `layers` (parameter names), as the user chose them: QGIS hands the engine a
        temporary copy of a layer in another format (GeoJSON labels become a GeoPackage), so only here
        is the original file known."""
        from ..hsigan_qgis.outputs import check_outputs
        sources = []
        for name in layers:
            layer = self.parameterAsLayer(parameters, name, context)
            if layer is not None:
                sources.append(layer.source())
        check_outputs([(p, path) for p, path in written if path], sources)

    def execute(self, parameters, context, feedback, engine_feedback):
        raise NotImplementedError
