#!/usr/bin/env bash
# The main job on the bundled Salinas-A sample, through real QGIS (qgis_process):
# train (default settings) -> classify -> assess against spatially
# disjoint reference polygons.
# Leaves out/sample/{model.hsigan, classification.tif (+ .qml), training.html, accuracy.html}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/out/sample}"
mkdir -p "$out"
data="$here/sample_data"
q="$here/bin/qgis-process"
"$q" run hsigan:train -- INPUT="$data/salinas_a.tif" LABELS="$data/salinas_a_train.gpkg" CLASS_FIELD=class_name \
  SEED=0 OUTPUT_MODEL="$out/model.hsigan" OUTPUT_REPORT="$out/training.html"
"$q" run hsigan:classify -- INPUT="$data/salinas_a.tif" MODEL="$out/model.hsigan" \
  OUTPUT="$out/classification.tif" OUTPUT_CONFIDENCE="$out/confidence.tif"
"$q" run hsigan:assess -- INPUT="$out/classification.tif" REFERENCE="$data/salinas_a_reference.gpkg" \
  CLASS_FIELD=class_name OUTPUT_REPORT="$out/accuracy.html" | tee "$out/assess.log"
echo
echo "Sample run done: classification map $out/classification.tif, reports $out/training.html and $out/accuracy.html"
grep -E "^(OA|AA|KAPPA):" "$out/assess.log"
