"""Parameter ids in user-facing text, shown as the dialog shows them: "Hyperspectral raster (INPUT)".

The engine names parameters by id (INPUT, TILE_SIZE), which is what the command line and qgis_process take;
the QGIS dialogs show labels. Errors and help in QGIS name both, so a user finds the field in the dialog and
the id for scripts. The command line keeps the engine's own text."""
import re


def labels_by_id(algorithm):
    """{parameter id: dialog label} for an algorithm's parameters, without a trailing remark in brackets
    ("Tile size (pixels)" -> "Tile size")."""
    return {p.name(): re.sub(r"\s*\([^()]*\)$", "", p.description()) or p.description()
            for p in algorithm.parameterDefinitions()}


def with_labels(text, algorithm, first=None):
    """text with every bare parameter id of the algorithm written as "Label (ID)". `first`: the id the
    text starts with ("ID: message", as InputError writes it), which becomes "Label (ID): message"."""
    labels = labels_by_id(algorithm)
    if first and first in labels and text.startswith(first + ":"):
        head, body = f"{labels[first]} ({first}):", text[len(first) + 1:]
    else:
        head, body = "", text
    in_text = [name for name in labels if len(name) >= 4]  # shorter ids (GAN, COG) are also ordinary words
    if in_text:
        pattern = re.compile(r"(?<![\w(])(" + "|".join(sorted(map(re.escape, in_text), key=len, reverse=True))
                             + r")(?![\w)=-])")  # ID=value is command-line syntax: left as it is
        body = pattern.sub(lambda m: f"{labels[m.group(1)]} ({m.group(1)})", body)
    return head + body
