#!/usr/bin/env bash
# Builds dist/hsigan-<version>.zip for QGIS's "Plugins > Manage and Install Plugins > Install from ZIP": the
# committed HEAD as `git archive` writes it, in one folder hsigan/. It is the forge's "Download ZIP" of the
# repository with another folder name: .gitattributes (export-ignore) is the one list of what ships.
# Uncommitted changes are not in it (a warning says so).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
git rev-parse --git-dir >/dev/null 2>&1 || {
  echo "build_zip: needs a git checkout (a downloaded ZIP of the repository is already a plugin zip)" >&2; exit 2; }
version=$(git show HEAD:metadata.txt | sed -n 's/^version=//p')
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
  echo "build_zip: warning: uncommitted changes are not in the zip (it holds HEAD, $(git rev-parse --short HEAD))" >&2
mkdir -p dist
rm -f "dist/hsigan-$version.zip"
git archive --format=zip --prefix=hsigan/ -o "dist/hsigan-$version.zip" HEAD
echo "dist/hsigan-$version.zip"
