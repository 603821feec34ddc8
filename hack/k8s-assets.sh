#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries that envtest and the local cluster need
# from the Go module proxy, because setup-envtest's download site is out of reach here.
# Idempotent: binaries already present in the target directory are left alone.
#
# Usage: hack/k8s-assets.sh [OUT_DIR]
#   K8S_VERSION   Kubernetes release to build (default v1.37.2)
#   ETCD_VERSION  etcd release to build (default v3.7.3)
#   K8S_COMPONENTS components to build (default: kube-apiserver kube-controller-manager
#                  kube-scheduler kubectl)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
COMPONENTS=${K8S_COMPONENTS:-kube-apiserver kube-controller-manager kube-scheduler kubectl}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/k8s/$K8S_VERSION}
work=$root/bin/.k8s-build
mkdir -p "$out"
out=$(cd "$out" && pwd)

missing=()
for c in $COMPONENTS; do
  [ -x "$out/$c" ] || missing+=("$c")
done
need_etcd=0
[ -x "$out/etcd" ] || need_etcd=1
if [ ${#missing[@]} -eq 0 ] && [ $need_etcd -eq 0 ]; then
  echo "k8s-assets: $out is complete"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
# Client-go's staging modules are published as v0.X.Y for Kubernetes v1.X.Y.
staging_version=v0${K8S_VERSION#v1}
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}

if [ ${#missing[@]} -gt 0 ]; then
  mod=$work/kubernetes-$K8S_VERSION
  mkdir -p "$mod"
  if [ ! -f "$mod/.tidy" ]; then
    echo "k8s-assets: resolving k8s.io/kubernetes@$K8S_VERSION"
    upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    {
      echo "module localbuild/kubernetes"
      echo
      echo "go 1.26"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
        echo "tool k8s.io/kubernetes/cmd/$c"
      done
      echo
      # k8s.io/kubernetes points its staging modules at ./staging; point them at the
      # published copies instead (the two sample modules are not published).
      grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$upstream_gomod" \
        | awk '{print $1}' | sort -u \
        | grep -vE '^k8s\.io/(sample-cli-plugin|sample-controller)$' \
        | while read -r m; do echo "replace $m => $m $staging_version"; done
    } > "$mod/go.mod"
    (cd "$mod" && go mod tidy)
    touch "$mod/.tidy"
  fi
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for c in "${missing[@]}"; do
    echo "k8s-assets: building $c $K8S_VERSION"
    (cd "$mod" && go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldflags" \
      -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$out/$c.tmp" "$out/$c"
  done
fi

if [ $need_etcd -eq 1 ]; then
  mod=$work/etcd-$ETCD_VERSION
  mkdir -p "$mod"
  if [ ! -f "$mod/.tidy" ]; then
    printf 'module localbuild/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n\ntool go.etcd.io/etcd/server/v3\n' "$ETCD_VERSION" > "$mod/go.mod"
    (cd "$mod" && go mod tidy)
    touch "$mod/.tidy"
  fi
  echo "k8s-assets: building etcd $ETCD_VERSION"
  (cd "$mod" && go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp" "$out/etcd"
fi
echo "k8s-assets: $out is complete"
