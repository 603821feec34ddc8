#!/usr/bin/env bash
# Builds Helm from source through the Go module proxy (no prebuilt binary is downloaded),
# for `helm lint` and `helm template` in the chart tests and the end-to-end environment,
# which installs the operator from the chart. Idempotent: a binary of the right version is
# left alone.
#
# Usage: hack/helm.sh [OUT_DIR]
#   HELM_VERSION  helm.sh/helm/v4 release (default v4.3.2)
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v4.3.2}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/helm}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -x "$out/helm" ] && [ "$(cat "$out/VERSION" 2>/dev/null)" = "$HELM_VERSION" ]; then
  echo "helm: $out/helm is $HELM_VERSION"
  exit 0
fi

# Built outside this module, with the go.mod Helm's authors tested.
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
echo "helm: building helm $HELM_VERSION"
GOBIN=$out go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
echo "$HELM_VERSION" > "$out/VERSION"
"$out/helm" version
