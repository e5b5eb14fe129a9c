"""Self-contained HTML reports (inline SVG plots, no external files) with a JSON twin beside each.
One set of building blocks serves the training, assessment and augmentation reports."""
import html
import json
import math

from .outputs import atomic_path, twin_path

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.name,th.name{text-align:left}.big{font-size:1.5em;margin-right:1.5em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}.note{color:#666;font-size:.9em}"""
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def _e(text):
    return html.escape(str(text))


def fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def headline(pairs):
    return "<p>" + "".join(f'<span class="big">{_e(k)} <b>{_e(v)}</b></span>' for k, v in pairs) + "</p>"


def confusion_table(names, matrix):
    """Rows: reference, columns: map (numbered like the rows, so long class names do not widen the
    table). Cells shaded by their share of the row; the diagonal green, errors red."""
    head = "".join(f'<th title="{_e(n)}">{i}</th>' for i, n in enumerate(names, start=1))
    rows = []
    for k, (name, row) in enumerate(zip(names, matrix), start=1):
        total = max(sum(row), 1)
        cells = "".join(
            f'<td style="background:rgba({"44,160,44" if j == k else "214,39,40"},{0.8 * v / total:.2f})">{v}</td>'
            for j, v in enumerate(row, start=1))
        rows.append(f'<tr><th class="name">{k}&nbsp;&nbsp;{_e(name)}</th>{cells}<td>{sum(row)}</td></tr>')
    totals = "".join(f"<td>{sum(col)}</td>" for col in zip(*matrix))
    return (f'<table><tr><th class="name">reference \\ map</th>{head}<th>total</th></tr>{"".join(rows)}'
            f'<tr><th class="name">total</th>{totals}<td>{sum(map(sum, matrix))}</td></tr></table>')


def bar_chart(names, series, title, ylabel, width=760, height=250, maximum=100.0):
    """Grouped vertical bars: series [(label, values)] over the classes in `names` (None = no bar)."""
    if not names or not series:
        return ""
    left, right, top, bottom = 50, 10, 40, 30
    group = (width - left - right) / len(names)
    bar = group * 0.8 / len(series)

    def sy(value):
        return height - bottom - value / maximum * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'style="background:#fff;border:1px solid #ddd;margin:4px">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{_e(title)}</text>',
             f'<text x="12" y="{height / 2}" font-size="11" transform="rotate(-90 12 {height / 2})" '
             f'text-anchor="middle">{_e(ylabel)}</text>']
    for value in (0, maximum / 2, maximum):
        parts.append(f'<line x1="{left}" y1="{sy(value)}" x2="{width - right}" y2="{sy(value)}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{sy(value) + 4}" font-size="10" text-anchor="end">{value:.4g}</text>')
    for s, (label, values) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        parts.append(f'<rect x="{left + 10 + 150 * s}" y="24" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + 24 + 150 * s}" y="33" font-size="11">{_e(label)}</text>')
        for i, value in enumerate(values):
            if value is None:
                continue
            x = left + i * group + group * 0.1 + s * bar
            parts.append(f'<rect x="{x:.1f}" y="{sy(value):.1f}" width="{bar:.1f}" '
                         f'height="{sy(0) - sy(value):.1f}" fill="{colour}"><title>{_e(names[i])}: '
                         f'{value:.1f}</title></rect>')
    for i, name in enumerate(names):
        parts.append(f'<text x="{left + (i + 0.5) * group:.1f}" y="{height - bottom + 14}" font-size="10" '
                     f'text-anchor="middle">{i + 1}</text>')
    parts.append(f'<line x1="{left}" y1="{sy(0)}" x2="{width - right}" y2="{sy(0)}" stroke="#888"/></svg>')
    return "".join(parts)


def table(header, rows):
    head = "".join(f'<th class="{"name" if i == 0 else ""}">{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"name" if i == 0 else ""}">{_e(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def nice_ticks(low, high, count=5, integer=False):
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [low, high], and their
    text: (values, labels). integer: steps of at least 1 (epochs, steps)."""
    span = high - low if high > low else (abs(high) or 1.0)
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1, round(step))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    last = max(last, first + 1)
    values = [round(k * step, 12) for k in range(first, last + 1)]
    decimals = 0 if integer else max(0, -math.floor(math.log10(step) + 1e-9) + (1 if step / magnitude == 2.5 else 0))
    return values, [f"{v:.{decimals}f}" for v in values]


def line_chart(series, title, xlabel, ylabel, width=520, height=260, bands=None):
    """series: [(label, xs, ys)]; bands: optional [(xs, lows, highs)] shaded like the series' colours.
    Axes run over round ticks; the left margin fits the widest tick label, so the axis title is not cut."""
    points = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys) if y is not None]
    for xs, lows, highs in bands or []:
        points += list(zip(xs, lows)) + list(zip(xs, highs))
    if not points:
        return ""
    integer_x = all(float(p[0]).is_integer() for p in points)
    xticks, xtexts = nice_ticks(min(p[0] for p in points), max(p[0] for p in points), 6, integer_x)
    yticks, ytexts = nice_ticks(min(p[1] for p in points), max(p[1] for p in points), 5)
    x0, x1, y0, y1 = xticks[0], xticks[-1], yticks[0], yticks[-1]
    left, right, top, bottom = 28 + 6 * max(len(t) for t in ytexts), 10, 25, 35

    def sx(x):
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y):
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'style="background:#fff;border:1px solid #ddd;margin:4px">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{_e(title)}</text>',
             f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle" font-size="11">{_e(xlabel)}</text>',
             f'<text x="14" y="{height / 2}" font-size="11" transform="rotate(-90 14 {height / 2})" '
             f'text-anchor="middle" class="ylabel">{_e(ylabel)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>']
    for value, text in zip(yticks, ytexts):
        parts.append(f'<line x1="{left}" y1="{sy(value):.1f}" x2="{width - right}" y2="{sy(value):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{sy(value) + 4:.1f}" font-size="10" text-anchor="end" '
                     f'class="ytick">{text}</text>')
    for value, text in zip(xticks, xtexts):
        parts.append(f'<text x="{sx(value):.1f}" y="{height - bottom + 13}" font-size="10" text-anchor="middle" '
                     f'class="xtick">{text}</text>')
    for i, (xs, lows, highs) in enumerate(bands or []):
        outline = [f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, highs)] + \
                  [f"{sx(x):.1f},{sy(y):.1f}" for x, y in reversed(list(zip(xs, lows)))]
        parts.append(f'<polygon points="{" ".join(outline)}" fill="{COLOURS[i % len(COLOURS)]}" opacity="0.18"/>')
    for i, (label, xs, ys) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys) if y is not None)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        parts.append(f'<text x="{width - right - 4}" y="{top + 12 + 13 * i}" font-size="11" '
                     f'text-anchor="end" fill="{colour}">{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def page(title, body):
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>")


def write(path, title, body, data, parameter="OUTPUT_REPORT"):
    """The HTML report and its JSON twin (same name, .json), moved into place together."""
    twin = json.dumps(data, indent=1, default=_jsonable)
    with atomic_path(path, parameter) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(page(title, body))
        with open(twin_path(temporary), "w", encoding="utf-8") as stream:
            stream.write(twin)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def per_class_rows(result):
    return [(n, s, fmt(p and 100 * p, 1), fmt(u and 100 * u, 1), fmt(f and 100 * f, 1))
            for n, s, p, u, f in zip(result["class_names"], result["support"], result["producers_accuracy"],
                                     result["users_accuracy"], result["f1"])]


def write_assessment_report(path, result):
    body = headline([("OA", f"{result['oa']:.2f}%"), ("AA", f"{result['aa']:.2f}%"),
                     ("kappa", f"{result['kappa']:.4f}")])
    body += (f'<p class="note">Map {_e(result["map"])} against reference {_e(result["reference"])}: '
             f'{result["pixels"]} reference pixels; {result["unclassified_reference_pixels"]} more fell on '
             f"nodata and are not counted. Producer's accuracy = recall of the reference class; user's accuracy "
             f"= precision of the mapped class.</p>")
    body += "<h2>Per class</h2>" + table(["class", "reference pixels", "producer's acc. %", "user's acc. %", "F1 %"],
                                         per_class_rows(result))
    body += bar_chart(result["class_names"], [
        ("producer's accuracy", [p if p is None else 100 * p for p in result["producers_accuracy"]]),
        ("user's accuracy", [u if u is None else 100 * u for u in result["users_accuracy"]])],
        "Per-class accuracy (classes numbered as in the confusion matrix)", "%")
    body += "<h2>Confusion matrix</h2>" + confusion_table(result["class_names"], result["confusion"])
    write(path, "HSI-GAN accuracy assessment", body, result)


def _head_note(head):
    """'; fused with a spectral kernel head ...' of a model with SPECTRAL_HEAD on, else ''."""
    if not head:
        return ""
    alone = head.get("network_validation_oa")
    side = 2 * head.get("window", 0) + 1
    return (f"; fused with a spectral kernel head (weight {head['weight']:g}, {_e(str(head.get('weight_chosen', '')))}; "
            f"window {side}x{side}, {_e(str(head.get('window_chosen', 'before SPECTRAL_HEAD_WINDOW: 1x1')))}; "
            f"{head['support']} training spectra, leave-one-out accuracy {fmt(head.get('loo_oa'))}%"
            + (f"; validation OA of the network alone {fmt(alone)}%" if alone is not None else "")
            + (f"; after validation refitted on the {head['refitted']['pixels']} training and validation pixels "
               "together, as every pixel trains: the validation figures are those of the model before the refit"
               if head.get("refitted") else "") + ")")


def _smoothing_note(smoothing):
    """'; class probabilities averaged over 5x5 pixels (why)' of a model with SMOOTHING, or why it has none."""
    if not smoothing:
        return ""
    box = smoothing.get("box", 1)
    return (f"; {'no smoothing' if box == 1 else f'class probabilities averaged over {box}x{box} pixels'} "
            f"({_e(str(smoothing.get('chosen', '')))})")


def write_training_report(path, metadata):
    training, validation = metadata["training"], metadata.get("validation") or {}
    body = headline([("validation OA", fmt(validation.get("oa")) + "%"), ("AA", fmt(validation.get("aa")) + "%"),
                     ("kappa", fmt(validation.get("kappa"), 4))])
    body += (f'<p class="note">{training["train_pixels"]} training and {training["validation_pixels"]} validation '
             f"pixels; validation blocks of {training['block_size']} px are spatially disjoint from the training "
             f"pixels (no training patch overlaps them). GAN mode: {_e(training['gan'])}"
             f"{_auto_note(training.get('gan_auto'))}{_rule_note(training.get('gan_rule'))}"
             f"{'; every class shown equally often (CLASS_BALANCED)' if training.get('class_balanced') else ''}"
             f"{_head_note(metadata.get('spectral_head'))}{_smoothing_note(metadata.get('smoothing'))}. "
             f"{training['seconds']} s on {_e(training['device'])}.</p>")
    if validation.get("chose"):
        body += (f'<p class="note">The validation pixels also chose {_e(listed(validation["chose"]))}, so '
                 "the validation figures are slightly optimistic; Assess accuracy (hsigan:assess) on reference "
                 "data kept out of training gives an unbiased figure.</p>")
    validation_counts = [sum(row) for row in validation["confusion"]] if validation.get("confusion") else None
    body += validation_note(metadata["class_names"], validation_counts)
    body += "<h2>Pixels per class</h2>" + table(
        ["class", "id", "training pixels", "validation pixels"],
        [(n, i, c, "–" if validation_counts is None else v)
         for n, i, c, v in zip(metadata["class_names"], metadata["class_ids"], training["train_pixels_per_class"],
                               validation_counts or [None] * len(metadata["class_ids"]))])
    history = metadata.get("history") or []
    if history:
        epochs = [h["epoch"] for h in history]
        body += "<h2>Training curves</h2>" + line_chart([("loss", epochs, [h["loss"] for h in history])],
                                                       "Classifier loss", "epoch", "cross-entropy")
        if any(h["val_oa"] is not None for h in history):
            body += line_chart([("validation OA", epochs, [h["val_oa"] for h in history])],
                               "Validation OA", "epoch", "OA %")
    gan_history = metadata.get("gan_history") or []
    if gan_history:
        steps = [h["step"] for h in gan_history]
        keys = [k for k in gan_history[0] if k != "step"]
        body += line_chart([(k, steps, [h[k] for h in gan_history]) for k in keys],
                           "GAN losses", "generator step", "loss")
    if validation.get("confusion"):
        body += "<h2>Validation confusion matrix</h2>" + confusion_table(metadata["class_names"],
                                                                          validation["confusion"])
    write(path, "HSI-GAN training report", body, metadata)


def validation_note(names, validation_counts):
    """Which classes the validation figures cover: AA averages the per-class accuracy of the classes that
    have validation pixels only, so a class without any cannot lower it; say so, and name them."""
    if validation_counts is None:
        return ('<p class="note">No validation pixels (VALIDATION_FRACTION is 0 or every class sits in one '
                'block): no validation figures.</p>')
    without = [n for n, c in zip(names, validation_counts) if c == 0]
    with_pixels = [n for n, c in zip(names, validation_counts) if c > 0]
    text = (f"AA is the mean accuracy over the {len(with_pixels)} of {len(names)} classes that have validation "
            f"pixels")
    if without:
        text += (f"; {len(without)} class{'es have' if len(without) > 1 else ' has'} no validation pixels and "
                 f"{'are' if len(without) > 1 else 'is'} not validated: {', '.join(without)} (all their labelled "
                 "blocks went to training; more labels or a smaller BLOCK_SIZE give it some)")
    return f'<p class="note">{_e(text)}.</p>'


def write_augment_report(path, metadata, figures):
    """Real vs synthetic spectra per class (mean ± std) and the fidelity figures of hsigan:augment."""
    fid = metadata["fidelity"]
    angle, sep = fid["mean_spectral_angle"], fid["mean_separability"]
    body = headline([("mean spectral angle", fmt(angle) + "°"), ("real-vs-synthetic accuracy", fmt(sep, 1) + "%"),
                     ("samples", f"{sum(metadata['real_per_class'])} real + "
                                 f"{sum(metadata['synthetic_per_class'])} synthetic")])
    body += ('<p class="note">Spectral angle: angle between the real and the synthetic class-mean spectra of the '
             "centre pixels (0° = same shape; a few degrees is close). Real-vs-synthetic accuracy: a logistic "
             "regression on centre spectra and per-band patch texture, cross-validated on balanced real and "
             "synthetic samples of each class; 50% means it cannot tell them apart, 100% that the synthetic "
             f"samples are easy to spot. GAN: {metadata['gan']['steps']} generator steps on "
             f"{_e(metadata['gan']['device'])}, trained on all real samples; {metadata['seconds']} s.</p>")
    body += "<h2>Fidelity per class</h2>" + table(
        ["class", "real samples", "synthetic samples", "spectral angle °", "real-vs-synthetic accuracy %"],
        [(r["class_name"], r["real"], r["synthetic"], fmt(r["spectral_angle"]), fmt(r["separability"], 1))
         for r in figures["per_class"]])
    xs = metadata.get("wavelengths") or list(range(1, metadata["bands"] + 1))
    xlabel = "wavelength" if metadata.get("wavelengths") else "band"
    body += "<h2>Real and synthetic spectra (centre pixel, mean ± 1 std)</h2>"
    for r in figures["per_class"]:
        rm, rs, sm, ss = (r[k] for k in ("real_mean", "real_std", "synthetic_mean", "synthetic_std"))
        body += line_chart([(f"real (n={r['real']})", xs, rm), (f"synthetic (n={r['synthetic']})", xs, sm)],
                           r["class_name"], xlabel, "value (raster units)", width=480, height=240,
                           bands=[(xs, [m - s for m, s in zip(rm, rs)], [m + s for m, s in zip(rm, rs)]),
                                  (xs, [m - s for m, s in zip(sm, ss)], [m + s for m, s in zip(sm, ss)])])
    history = metadata["gan"].get("history") or []
    if history:
        steps = [h["step"] for h in history]
        keys = [k for k in history[0] if k != "step"]
        body += "<h2>GAN training</h2>" + line_chart([(k, steps, [h[k] for h in history]) for k in keys],
                                                     "WGAN-GP losses", "generator step", "loss")
    data = dict(metadata, spectra=[{k: r[k] for k in ("class_name", "real_mean", "real_std", "synthetic_mean",
                                                         "synthetic_std")} for r in figures["per_class"]])
    write(path, "HSI-GAN synthetic samples", body, data)


def listed(items):
    """'a, b and c'."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _rule_note(rule):
    """' (trained as mixup: the median class has 15 training pixels, at most 20)' for GAN=mixup-if-few, or
    ' (trained as none: a sample file holds no ...)' for ssgan from a sample file."""
    return f" (trained as {_e(rule['chosen'])}: {_e(rule['reason'])})" if rule else ""


def _auto_note(auto):
    """' (chosen by GAN auto: validation OA none 71.2%, ssgan 74.0%)' for a model trained with GAN=auto."""
    if not auto:
        return ""
    return f" (chosen by GAN auto: validation OA {_e(auto['reason'])})"
