#!/usr/bin/env bash
# The test suite: sets up what is missing (scripts/setup.sh), then runs pytest (real QGIS, real GDAL files).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
# Idle OpenMP threads sleep instead of spinning: the tests start qgis_process children beside them.
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
