#!/usr/bin/env bash
# Builds Istio's own control plane from source through the Go module proxy (istio.io/istio is
# served there as pseudo-versions of its main branch; no prebuilt binary is downloaded):
# pilot-discovery (istiod) and istioctl, which renders a revision's manifests exactly as
# `istioctl install` would apply them (`make test-istio` takes istiod's settings and the
# revision's ConfigMaps from it), and beside them crds.yaml, Istio's CRDs
# (manifests/charts/base/files/crd-all.gen.yaml). Idempotent: a complete OUT_DIR for the
# same version is left alone.
#
# Usage: hack/istio-tools.sh [OUT_DIR]
#   ISTIO_VERSION     istio.io/istio module version (default: Istio's main branch of 2026-08-27)
set -euo pipefail

ISTIO_VERSION=${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/istio}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp="istio $ISTIO_VERSION"

if [ -x "$out/pilot-discovery" ] && [ -x "$out/istioctl" ] && [ -f "$out/crds.yaml" ] \
  && [ "$(cat "$out/VERSIONS" 2>/dev/null)" = "$stamp" ]; then
  echo "istio-tools: $out is complete"
  exit 0
fi

# Built with the go.mod Istio's authors tested, and the build tags of Istio's own Makefile.
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "istio-tools: building pilot-discovery and istioctl from istio.io/istio@$ISTIO_VERSION (several minutes cold)"
GOBIN=$tmp go install -trimpath -ldflags "-s -w" -tags vtprotobuf,disable_pgv \
  "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION" \
  "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_VERSION"

istio_dir=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
{
  echo "# from istio.io/istio@$ISTIO_VERSION/manifests/charts/base/files/crd-all.gen.yaml"
  cat "$istio_dir/manifests/charts/base/files/crd-all.gen.yaml"
} > "$tmp/crds.yaml"

mv "$tmp/pilot-discovery" "$tmp/istioctl" "$tmp/crds.yaml" "$out/"
echo "$stamp" > "$out/VERSIONS"
echo "istio-tools: $out is complete"
