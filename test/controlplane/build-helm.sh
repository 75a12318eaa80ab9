#!/usr/bin/env bash
# Builds helm from its Go module into the version-keyed cache (like the control plane); prints its path.
set -euo pipefail
HELM_VERSION="${MXOPS_HELM_VERSION:-v3.19.5}"
CACHE_DIR="${MXOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mxops}"
BIN_DIR="$CACHE_DIR/bin/helm-$HELM_VERSION"
mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/helm-build.lock"
flock 9
if [ ! -x "$BIN_DIR/helm" ]; then
  command -v go >/dev/null 2>&1 || { echo "[helm-build] FAILED: Go is needed to build helm" >&2; exit 1; }
  echo "[helm-build] building helm $HELM_VERSION from helm.sh/helm/v3 (a few minutes, once)" >&2
  start=$SECONDS
  tmp="$(mktemp -d "$CACHE_DIR/bin/.helm.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOBIN="$tmp" \
      go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$tmp/build.log" 2>&1); then
    tail -n 30 "$tmp/build.log" >&2
    echo "[helm-build] FAILED: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
    exit 1
  fi
  mkdir -p "$BIN_DIR"
  mv "$tmp/helm" "$BIN_DIR/helm"
  echo "[helm-build] done in $((SECONDS - start))s" >&2
fi
echo "$BIN_DIR/helm"
