#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the Go module proxy into a
# cache outside the repository, keyed by Kubernetes and Go versions. Prints the binary directory
# on stdout (last line) and progress on stderr. Reuses the cache when every binary is present and
# reports the pinned version. With KUBEBUILDER_ASSETS set, checks and prints that directory instead.
#
#   build.sh            the default version: the one test/control-plane/go.mod pins (also the nodes')
#   build.sh 1.37       another supported minor: test/control-plane/k8s-1.37/go.mod pins its patch
#                       (kube-apiserver and kube-controller-manager; etcd and kubectl are linked
#                       from the default version's build)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod_dir=$here
default_minor=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$here/go.mod" | sed 's/^v//' | cut -d. -f1,2)
if [ -n "${1:-}" ] && [ "${1#v}" != "$default_minor" ]; then
  mod_dir="$here/k8s-${1#v}"
  [ -f "$mod_dir/go.mod" ] || { printf '[control-plane] Kubernetes %s has no control-plane module here (test/control-plane/k8s-<minor>/go.mod); the versions the tests build: %s\n' "$1" \
    "$( (echo "$default_minor"; cd "$here" && ls -d k8s-* | sed 's/^k8s-//') | sort -V | tr '\n' ' ')" >&2; exit 1; }
fi
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$mod_dir/go.mod")
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
BINS=(etcd kube-apiserver kube-controller-manager kubectl)

say() { printf '[control-plane] %s\n' "$*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ "$mod_dir" = "$here" ]; then
  for b in etcd kube-apiserver; do
    [ -x "$KUBEBUILDER_ASSETS/$b" ] || { say "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"; exit 1; }
  done
  say "using binaries from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

command -v go >/dev/null || { say "go is not on PATH: install Go >= 1.25 (the control planes are built from Go modules)"; exit 1; }
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${MCSA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/multicluster-service-account}
OUT="$CACHE_ROOT/control-plane/$K8S_VERSION-$GO_VERSION"

complete() {
  for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || return 1; done
  "$OUT/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}

if complete; then
  say "cached: $OUT ($K8S_VERSION, $GO_VERSION)"
  echo "$OUT"
  exit 0
fi

# One build at a time per cache: a second caller waits for the first.
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
if ! flock -n 9; then
  say "another build holds $OUT/.lock; waiting for it"
  flock 9
fi
if complete; then echo "$OUT"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

say "building Kubernetes $K8S_VERSION with $GO_VERSION into $OUT (first build takes a while; later runs reuse it)"
say "downloading modules"
(cd "$mod_dir" && go mod download) >&2
say "modules downloaded ($(elapsed))"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # name pkg flags
  local name=$1 pkg=$2 flags=$3 t0
  t0=$(date +%s)
  say "building $name ($pkg) — total elapsed $(elapsed)"
  # Progress: a line every 60 s while the compiler works (the ticker closes the lock fd, so a
  # sleeping ticker never keeps the lock held after the build is done).
  ( exec 9>&-; while sleep 60; do say "  still building $name: $(( $(date +%s) - t0 ))s"; done ) &
  local ticker=$!
  if ! (cd "$mod_dir" && go build -trimpath -ldflags "$flags" -o "$OUT/$name.tmp" "$pkg") >&2; then
    kill "$ticker" 2>/dev/null; say "FAILED building $name"; exit 1
  fi
  kill "$ticker" 2>/dev/null || true
  mv "$OUT/$name.tmp" "$OUT/$name"
  say "built $name in $(( $(date +%s) - t0 ))s ($(du -h "$OUT/$name" | cut -f1))"
}

if [ "$mod_dir" = "$here" ]; then
  build etcd go.etcd.io/etcd/server/v3 "-s -w"
  build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
  build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
  build kubectl k8s.io/kubernetes/cmd/kubectl "$ldflags"
else
  # Another minor: its own API server and controller manager; etcd and kubectl are the default
  # version's (etcd 3.6 serves every supported minor; the tests' kubectl only reads), which halves
  # a cold build.
  build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
  build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
  default_out=$(bash "$here/build.sh" | tail -n 1)
  for b in etcd kubectl; do ln -sfn "$default_out/$b" "$OUT/$b"; done
fi

complete || { say "built binaries do not report Kubernetes $K8S_VERSION"; exit 1; }
say "done in $(elapsed): $OUT"
echo "$OUT"
