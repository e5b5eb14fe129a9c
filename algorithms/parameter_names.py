"""Parameter ids in user-facing text, shown as the dialog shows them: "Hyperspectral raster (INPUT)".

The engine names parameters by id (INPUT, TILE_SIZE), which is what the command line and qgis_process take;
the QGIS dialogs show labels. Errors and help in QGIS name both, so a user finds the field in the dialog and
the id for scripts. The command line keeps the engine's own text."""
import re


def labels_by_id(algorithm):
    """{parameter id: dialog label} for an algorithm's parameters (ids of 4+ characters: shorter ones such
    as GAN also occur as ordinary words)."""
    return {p.name(): p.description() for p in algorithm.parameterDefinitions() if len(p.name()) >= 4}


def with_labels(text, algorithm, first=None):
    """text with every bare parameter id of the algorithm written as "Label (ID)". `first`: the id the
    text starts with ("ID: message", as InputError writes it), which becomes "Label (ID): message"."""
    labels = labels_by_id(algorithm)
    if first and first in labels and text.startswith(first + ":"):
        head, body = f"{labels[first]} ({first}):", text[len(first) + 1:]
    else:
        head, body = "", text
    if labels:
        pattern = re.compile(r"(?<![\w(])(" + "|".join(sorted(map(re.escape, labels), key=len, reverse=True))
                             + r")(?![\w)-])")
        body = pattern.sub(lambda m: f"{labels[m.group(1)]} ({m.group(1)})", body)
    return head + body
