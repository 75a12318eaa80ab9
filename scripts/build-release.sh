#!/usr/bin/env bash
# Builds what the container image ships into OUT: the operator as one bundled ES module (its dependencies
# included, only what it uses: ~20 MB less heap than loading client-node's whole generated API).
# The Dockerfile runs this (no container engine runs on the project's machines, so it is tested here).
set -euo pipefail
OUT="${1:?usage: build-release.sh OUT_DIR}"
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
rm -rf "$OUT"
mkdir -p "$OUT"
cp dist/mxops.mjs package.json "$OUT/"
echo "release in $OUT ($(du -sh "$OUT" | cut -f1))"
