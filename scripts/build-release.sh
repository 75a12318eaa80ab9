#!/usr/bin/env bash
# Builds what the container image ships into OUT: compiled JavaScript and production dependencies only.
# The Dockerfile runs this (no container engine runs on the project's machines, so it is tested here).
set -euo pipefail
OUT="${1:?usage: build-release.sh OUT_DIR}"
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
rm -rf "$OUT"
mkdir -p "$OUT"
cp -r dist package.json package-lock.json "$OUT/"
# No install scripts: production dependencies are plain JavaScript.
(cd "$OUT" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
rm -f "$OUT/package-lock.json"
find "$OUT/dist" -name '*.map' -delete
echo "release in $OUT ($(du -sh "$OUT" | cut -f1))"
