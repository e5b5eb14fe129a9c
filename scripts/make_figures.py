#!/usr/bin/env python3
"""Pictures for the README, made by the project's own code from the sample data:

  docs/img/classification_map.png  Salinas-A in false colour beside its HSI-GAN classification, drawn by
                                   QGIS itself (QgsMapRendererCustomPainterJob, offscreen) with the
                                   paletted style hsigan:classify gives loaded maps, and a legend
  docs/img/training_report.png     the HTML training report (curves), screenshot by headless Chromium
  docs/img/accuracy_report.png     the HTML accuracy report against the reference polygons, likewise
  docs/img/augment_report.png      the real vs synthetic spectra report of hsigan:augment, likewise

Run:  .venv/bin/python scripts/make_figures.py [--epochs 30] [--gan none|wgan|ssgan] [--gan-steps 150]
      [--only map|augment]   (OMP_NUM_THREADS=1 is much faster on a busy 2-core machine)
Needs QGIS's Python (see README) and, for the report pictures, chromium (apt-get install chromium);
without it the map is still drawn and the reports are left as HTML beside the pictures' folder.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SAMPLE = os.path.join(ROOT, "sample_data")
RASTER = os.path.join(SAMPLE, "salinas_a.tif")
OUT = os.path.join(ROOT, "docs", "img")
FALSE_COLOUR = (57, 27, 17)  # ~NIR, red, green bands of the 204-band AVIRIS cube (1-based)


def run_pipeline(work, epochs, gan):
    from hsigan_qgis.assess import assess
    from hsigan_qgis.config import AssessConfig, ClassifyConfig, TrainConfig
    from hsigan_qgis.feedback import ConsoleFeedback
    from hsigan_qgis.classify import classify
    from hsigan_qgis.train import train

    feedback = ConsoleFeedback()
    model = os.path.join(work, "salinas_a.hsigan")
    trained = train(TrainConfig(input=RASTER, labels=os.path.join(SAMPLE, "salinas_a_train.gpkg"),
                                class_field="class_name", output_model=model, epochs=epochs, gan=gan, seed=0,
                                output_report=os.path.join(work, "training_report.html")), feedback)
    classified = classify(ClassifyConfig(input=RASTER, model=model, output=os.path.join(work, "map.tif"),
                                         output_confidence=os.path.join(work, "confidence.tif")), feedback)
    assessed = assess(AssessConfig(input=classified.output, reference=os.path.join(SAMPLE, "salinas_a_reference.gpkg"),
                                   class_field="class_name", output_report=os.path.join(work, "accuracy_report.html")),
                      feedback)
    return trained, classified, assessed


def run_augment(work, steps):
    from hsigan_qgis.augment import augment
    from hsigan_qgis.config import AugmentConfig
    from hsigan_qgis.feedback import ConsoleFeedback
    return augment(AugmentConfig(input=RASTER, labels=os.path.join(SAMPLE, "salinas_a_train.gpkg"),
                                 class_field="class_name", output=os.path.join(work, "salinas_a.hsamples"),
                                 count_per_class=100, samples_per_class=100, gan_steps=steps, seed=0,
                                 output_report=os.path.join(work, "augment_report.html")), ConsoleFeedback())


def render_map(classified, assessed, path, scale=5):
    from qgis.core import (QgsContrastEnhancement, QgsMapRendererCustomPainterJob, QgsMapSettings,
                           QgsMultiBandColorRenderer, QgsRasterLayer)
    from qgis.PyQt.QtCore import QRectF, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter
    from hsigan_qgis import plugin_package
    plugin_package.load()
    from hsigan.algorithms.styling import apply_style

    scene = QgsRasterLayer(RASTER, "Salinas-A")
    rgb = QgsMultiBandColorRenderer(scene.dataProvider(), *FALSE_COLOUR)
    for band, setter in zip(FALSE_COLOUR, (rgb.setRedContrastEnhancement, rgb.setGreenContrastEnhancement,
                                           rgb.setBlueContrastEnhancement)):
        stats = scene.dataProvider().bandStatistics(band)
        enhancement = QgsContrastEnhancement(scene.dataProvider().dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(stats.mean - 2 * stats.stdDev)
        enhancement.setMaximumValue(stats.mean + 2 * stats.stdDev)
        setter(enhancement)
    scene.setRenderer(rgb)
    classes = QgsRasterLayer(classified.output, "Classification")
    apply_style(classes, "classes", classified.class_ids, classified.class_names, classified.class_colours)

    width, height = scene.width() * scale, scene.height() * scale
    gap, legend_w, top, bottom = 24, 330, 56, 40
    image = QImage(QSize(2 * width + gap + legend_w + 40, height + top + bottom), QImage.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    for i, layer in enumerate((scene, classes)):
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(layer.crs())
        settings.setExtent(scene.extent())
        settings.setOutputSize(QSize(width, height))
        settings.setBackgroundColor(QColor("white"))
        painter.save()
        painter.translate(20 + i * (width + gap), top)
        job = QgsMapRendererCustomPainterJob(settings, painter)
        job.start()
        job.waitForFinished()
        painter.restore()
    painter.setPen(QColor("#222"))
    painter.setFont(QFont("DejaVu Sans", 13, QFont.Bold))
    painter.drawText(QRectF(20, 8, width, 24), Qt.AlignLeft, "Salinas-A (AVIRIS, false colour)")
    painter.drawText(QRectF(20 + width + gap, 8, width + legend_w, 24), Qt.AlignLeft, "HSI-GAN classification")
    painter.setFont(QFont("DejaVu Sans", 10))
    painter.drawText(QRectF(20, top + height + 8, 2 * width + gap + legend_w, 24), Qt.AlignLeft,
                     f"Against the reference polygons (not used in training): OA {assessed.oa:.1f}%, "
                     f"AA {assessed.aa:.1f}%, kappa {assessed.kappa:.3f} ({assessed.pixels} pixels). "
                     "Rendered by QGIS with the style hsigan:classify applies.")
    x, y = 20 + 2 * width + gap + 16, top + 4
    painter.setFont(QFont("DejaVu Sans", 11))
    for cid, name, colour in zip(classified.class_ids, classified.class_names, classified.class_colours):
        painter.fillRect(QRectF(x, y, 22, 16), QColor(colour))
        painter.setPen(QColor("#444"))
        painter.drawRect(QRectF(x, y, 22, 16))
        painter.drawText(QRectF(x + 30, y - 2, legend_w, 20), Qt.AlignLeft, f"{cid}  {name}")
        y += 26
    painter.end()
    if not image.save(path):
        raise SystemExit(f"could not write {path}")
    del scene, classes


def screenshot(html, png, height):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print(f"no chromium: {html} not rendered (apt-get install chromium)", file=sys.stderr)
        return False
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", f"--window-size=1150,{height}", "file://" + html],
                   check=True, capture_output=True, timeout=120)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--gan", default="none", choices=("none", "wgan", "ssgan"))
    parser.add_argument("--gan-steps", type=int, default=150, help="WGAN-GP steps for the augment report")
    parser.add_argument("--only", choices=("map", "augment"), help="make only the map and report pictures of "
                        "the train/classify/assess run, or only the augment report picture")
    args = parser.parse_args()
    from qgis.core import QgsApplication
    app = QgsApplication([], False)
    app.initQgis()
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        if args.only != "augment":
            trained, classified, assessed = run_pipeline(work, args.epochs, args.gan)
            render_map(classified, assessed, os.path.join(OUT, "classification_map.png"))
            screenshot(os.path.join(work, "training_report.html"), os.path.join(OUT, "training_report.png"), 1060)
            screenshot(os.path.join(work, "accuracy_report.html"), os.path.join(OUT, "accuracy_report.png"), 960)
        if args.only != "map":
            run_augment(work, args.gan_steps)
            screenshot(os.path.join(work, "augment_report.html"), os.path.join(OUT, "augment_report.png"), 1250)
    print("\n".join(os.path.join(OUT, f) for f in sorted(os.listdir(OUT))))
    app.exitQgis()


if __name__ == "__main__":
    main()
