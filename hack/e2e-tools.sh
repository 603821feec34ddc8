#!/usr/bin/env bash
# Builds the end-to-end suite's simulated infrastructure from source through the Go module
# proxy (no prebuilt binary is downloaded): kwok, which plays the nodes and pods, and
# MetalLB's controller, which hands out load-balancer addresses as a cloud would. Copies
# the kwok node and pod stages and MetalLB's CRDs, which ship inside those modules, beside
# the binaries. Idempotent: a complete OUT_DIR is left alone.
#
# Usage: hack/e2e-tools.sh [OUT_DIR]
#   KWOK_VERSION     sigs.k8s.io/kwok release (default v0.8.0)
#   METALLB_VERSION  go.universe.tf/metallb release (default v0.15.2)
set -euo pipefail

KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
METALLB_VERSION=${METALLB_VERSION:-v0.15.2}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/e2e}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -x "$out/kwok" ] && [ -x "$out/metallb-controller" ] && [ -f "$out/kwok-stages.yaml" ] \
  && [ -d "$out/metallb-crds" ] && [ "$(cat "$out/VERSIONS" 2>/dev/null)" = "kwok $KWOK_VERSION metallb $METALLB_VERSION stages 2" ]; then
  echo "e2e-tools: $out is complete"
  exit 0
fi

# Built outside this module, each with the go.mod its authors tested.
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "e2e-tools: building kwok $KWOK_VERSION"
GOBIN=$tmp go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
echo "e2e-tools: building MetalLB's controller $METALLB_VERSION"
GOBIN=$tmp go install -trimpath -ldflags "-s -w" "go.universe.tf/metallb/controller@$METALLB_VERSION"

kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
metallb_dir=$(go mod download -json "go.universe.tf/metallb@$METALLB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')

# Nodes become Ready at once and keep their Lease and conditions fresh; pods become
# Running and Ready once scheduled, and go away when deleted (kwok's "fast" stages). A pod
# may ask for time, as a real proxy takes to start (fetch its configuration) and to drain:
# the annotations pod-ready.stage.kwok.x-k8s.io/delay and pod-delete.stage.kwok.x-k8s.io/delay
# (a Go duration) delay those two stages, which the rollout specs of the e2e suite use.
with_delay() { # STAGE FILE: the stage with a delay read from the pod's annotation
  awk -v stage="$1" '
    { print }
    !done && /^    kind: Pod$/ {
      print "  delay:"
      print "    durationMilliseconds: 0"
      print "    durationFrom:"
      print "      expressionFrom: '"'"'.metadata.annotations[\"" stage ".stage.kwok.x-k8s.io/delay\"]'"'"'"
      done = 1
    }' "$2"
}
{
  for f in "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
           "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           "$kwok_dir"/kustomize/stage/pod/fast/pod-ready.yaml \
           "$kwok_dir"/kustomize/stage/pod/fast/pod-complete.yaml \
           "$kwok_dir"/kustomize/stage/pod/fast/pod-delete.yaml; do
    echo "---"
    echo "# from sigs.k8s.io/kwok@$KWOK_VERSION/${f#"$kwok_dir"/}"
    case "$(basename "$f")" in
      pod-ready.yaml) echo "# with a delay from the pod's annotation"; with_delay pod-ready "$f" ;;
      pod-delete.yaml) echo "# with a delay from the pod's annotation"; with_delay pod-delete "$f" ;;
      *) cat "$f" ;;
    esac
  done
} > "$tmp/kwok-stages.yaml"

rm -rf "$out/metallb-crds"
mkdir -p "$out/metallb-crds"
cp "$metallb_dir"/config/crd/bases/*.yaml "$out/metallb-crds/"
chmod -R u+w "$out/metallb-crds"

mv "$tmp/kwok" "$out/kwok"
mv "$tmp/controller" "$out/metallb-controller"
mv "$tmp/kwok-stages.yaml" "$out/kwok-stages.yaml"
echo "kwok $KWOK_VERSION metallb $METALLB_VERSION stages 2" > "$out/VERSIONS"
echo "e2e-tools: $out is complete"
