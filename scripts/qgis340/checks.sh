#!/usr/bin/env bash
# The torch-free integration checks, run inside the Debian 13 root by scripts/qgis340.sh (checkout at /hsigan,
# read-only). Each check prints PASS or FAIL; the exit status is the number of failures.
set -uo pipefail
cd /hsigan
export HSIGAN_STATE=/tmp/hsigan-qgis340 HOME=/tmp/hsigan-home QT_QPA_PLATFORM=offscreen
mkdir -p "$HOME"
failures=0
check() {  # check NAME COMMAND...: PASS when COMMAND exits 0; its output goes to the log
  local name=$1; shift
  if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name"; echo "$out" | tail -n 15 | sed 's/^/    /'; failures=$((failures + 1)); fi
}
echo "QGIS $(qgis_process.bin --version 2>/dev/null | grep -m1 -o 'QGIS [0-9.]*' | cut -d' ' -f2), Python $(python3 -c 'import sys; print(sys.version.split()[0])'), GDAL $(python3 -c 'from osgeo import gdal; print(gdal.__version__)')"
check "QGIS is 3.40" sh -c "qgis_process.bin --version 2>/dev/null | grep -q 'QGIS 3\.40'"
check "torch is absent (these checks are torch-free)" sh -c "! python3 -c 'import torch'"
check "provider loads in qgis_process; 'list' shows the hsigan algorithms" sh -c "
  bin/qgis-process list > /tmp/list.txt 2>&1; for a in train classify assess augment check export_onnx install_torch; do
    grep -q \"hsigan:\$a\" /tmp/list.txt || { echo \"hsigan:\$a missing\"; cat /tmp/list.txt; exit 1; }; done"
check "hsigan:check runs and reports torch missing cleanly" sh -c "
  bin/qgis-process --json run hsigan:check > /tmp/check.json 2>/tmp/check.err; rc=\$?; cat /tmp/check.err
  [ \$rc -eq 0 ] && python3 -c \"import json; r = json.load(open('/tmp/check.json'))['results']
assert r['DEVICE'] == 'none' and 'torch=None' in r['REPORT'], r; print(r['REPORT'])\"
  grep -q 'Missing: torch' /tmp/check.err || { echo 'no Missing: torch message'; exit 1; }
  ! grep -q Traceback /tmp/check.err"
check "hsigan:train without torch fails with one clear message" sh -c "
  bin/qgis-process run hsigan:train -- INPUT=sample_data/salinas_a.tif LABELS=sample_data/salinas_a_train.gpkg \
    CLASS_FIELD=class_name OUTPUT_MODEL=/tmp/m.hsigan > /tmp/train.out 2>&1; rc=\$?; cat /tmp/train.out
  [ \$rc -ne 0 ] && grep -q 'HSI-GAN needs torch' /tmp/train.out && ! grep -q Traceback /tmp/train.out && [ ! -e /tmp/m.hsigan ]"
check "hsigan:install_torch finds QGIS's Python and runs pip --target past PEP 668 (a version that does not exist: fails cleanly)" sh -c "
  bin/qgis-process run hsigan:install_torch -- VARIANT=1 SOURCE=1 TORCH_VERSION=0.0.1 > /tmp/install.out 2>&1; rc=\$?; cat /tmp/install.out
  [ \$rc -ne 0 ] && grep -q -E '/usr/bin/python3(\\.13)? -m pip install --target' /tmp/install.out && grep -q 'pip failed' /tmp/install.out \
    && ! grep -q -i 'externally-managed' /tmp/install.out && ! grep -q Traceback /tmp/install.out"
check "the modeler model validates (QgsProcessingModelAlgorithm.validate, in-process QGIS)" \
  python3 scripts/qgis340/validate_model.py qgis_models/hsigan_pipeline.model3
check "the forge's Download ZIP installs with QGIS's own Install from ZIP in desktop QGIS (fresh profile, Xvfb) and loads again after a restart" \
  python3 scripts/qgis340/desktop_install.py /tmp/hsigan-qgis-main.zip /tmp/hsigan-desktop-install
echo "$failures check(s) failed"
exit "$failures"
