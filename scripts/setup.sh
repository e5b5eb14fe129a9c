#!/usr/bin/env bash
# Installs what HSI-GAN needs on Debian 12 / Ubuntu (idempotent; about 3 minutes the first time):
#  - QGIS with PyQGIS and Processing, GDAL, rasterio, scipy from the distribution; Xvfb, the display on which
#    tests/test_zip_install.py runs desktop QGIS (it crashes on Qt's offscreen platform);
#  - .venv (Debian's python3, --system-site-packages, so it sees PyQGIS/GDAL/rasterio) with torch:
#    the CPU build by default, HSIGAN_TORCH=cuda for the CUDA build (HSIGAN_TORCH=skip: leave torch alone);
#  - onnx and onnxruntime in .venv (ONNX export and its test);
#  - the plugin enabled for bin/qgis-process.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
torch_version=2.13.0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

packages="qgis python3-qgis qgis-providers python3-rasterio python3-scipy python3-venv python3-pip xvfb"
missing=$(for p in $packages; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages: $missing"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
pip=".venv/bin/python -m pip"
want="${HSIGAN_TORCH:-cpu}"
if [ "$want" != "skip" ] && ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$torch_version') else 1)" 2>/dev/null; then
  echo "setup: installing torch $torch_version ($want build)"
  if [ "$want" = "cuda" ]; then
    $pip install -q "torch==$torch_version"          # PyPI's Linux wheel is the CUDA build
  elif $pip install -q --no-deps --no-index "torch==$torch_version" 2>/dev/null; then
    $pip install -q "torch==$torch_version"          # a CPU wheel was on this machine; now its dependencies
  else
    $pip install -q "torch==$torch_version" --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple
  fi
fi
# numpy 2 breaks Debian's GDAL/rasterio/scipy: keep the system's numpy 1.x visible.
.venv/bin/python -c "import numpy, sys; sys.exit(0 if numpy.__version__ < '2' else 1)" || $pip install -q "numpy<2"
.venv/bin/python -c "import pytest" 2>/dev/null || $pip install -q "pytest>=7"
# ONNX export (hsigan:export_onnx) and its test run: onnx writes the file, onnxruntime runs it; numpy stays 1.x.
.venv/bin/python -c "import onnx, onnxruntime" 2>/dev/null || $pip install -q onnx onnxruntime "numpy<2"
# scikit-learn: only the benchmarks' SVM / random-forest baselines (bench/accuracy.py, bench/scenes.py) use it.
.venv/bin/python -c "import sklearn" 2>/dev/null || $pip install -q "scikit-learn<1.7" "numpy<2"
# Optional: classify on a Dask cluster (--dask / DASK) and its tests; QGIS use does not need it.
.venv/bin/python -c "import distributed" 2>/dev/null || $pip install -q "dask[distributed]" "numpy<2"
# The first qgis-process call links the plugin and enables it in a private QGIS profile.
bin/qgis-process list >/dev/null 2>&1 || true
bin/qgis-process list 2>/dev/null | grep -q "hsigan:train" || { echo "setup: the HSI-GAN provider did not load in qgis_process" >&2; exit 1; }
echo "setup: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'), QGIS $(dpkg-query -W -f='${Version}' qgis))"
