#!/usr/bin/env bash
# Builds dist/hsigan-<version>.zip for QGIS's "Plugins > Manage and Install Plugins > Install from ZIP".
# The zip holds one folder, hsigan/, with the plugin (no tests, benchmarks or sample data).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
version=$(sed -n 's/^version=//p' metadata.txt)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/hsigan" dist
cp metadata.txt __init__.py plugin.py torch_prompt.py icon.svg LICENSE README.md "$stage/hsigan/"
for package in hsigan_qgis models algorithms; do
  mkdir -p "$stage/hsigan/$package"
  cp "$package"/*.py "$stage/hsigan/$package/"
done
rm -f "dist/hsigan-$version.zip"
(cd "$stage" && python3 -m zipfile -c "$here/dist/hsigan-$version.zip" hsigan)
echo "dist/hsigan-$version.zip"
