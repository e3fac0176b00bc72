#!/usr/bin/env bash
# Builds what a real node needs from Go modules into the same cache as the control planes: kubelet
# and kube-scheduler (from the control-plane wrapper module, so the same Kubernetes version),
# containerd v2 with its runc shim and ctr, runc (cgo, seccomp), the CNI plugins bridge, host-local
# and loopback, a static pause binary for pod sandboxes and a relay from host ports into a node's
# network namespace. Prints the binary directory on stdout
# (last line) and progress on stderr. Reuses the cache when every binary is present.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$here/go.mod")
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
CONTAINERD_VERSION=v2.2.9
RUNC_VERSION=v1.3.7
CNI_VERSION=v1.9.0
BINS=(kubelet kube-scheduler containerd containerd-shim-runc-v2 ctr runc pause relay cni/bridge cni/host-local cni/loopback)

say() { printf '[node] %s\n' "$*" >&2; }

command -v go >/dev/null || { say "go is not on PATH: install Go >= 1.25 (the nodes are built from Go modules)"; exit 1; }
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${MCSA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/multicluster-service-account}
OUT="$CACHE_ROOT/node/$K8S_VERSION-containerd$CONTAINERD_VERSION-runc$RUNC_VERSION-cni$CNI_VERSION-$GO_VERSION"

complete() {
  for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || return 1; done
  "$OUT/kubelet" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}

if complete; then
  say "cached: $OUT"
  echo "$OUT"
  exit 0
fi

mkdir -p "$OUT/cni"
exec 9>"$OUT/.lock"
if ! flock -n 9; then
  say "another build holds $OUT/.lock; waiting for it"
  flock 9
fi
if complete; then echo "$OUT"; exit 0; fi

# runc needs libseccomp's headers; a fresh CI machine may not have them.
if ! [ -f /usr/include/seccomp.h ]; then
  command -v apt-get >/dev/null || { say "runc needs libseccomp headers (Debian: libseccomp-dev) and apt-get is missing"; exit 1; }
  say "installing libseccomp-dev and gcc (runc is built with cgo and seccomp)"
  (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o=Dpkg::Use-Pty=0 libseccomp-dev gcc libc6-dev) >&2
fi

export GOTOOLCHAIN=local
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }
say "building node binaries (Kubernetes $K8S_VERSION, containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, CNI $CNI_VERSION, $GO_VERSION) into $OUT"

ticking() { # name command...: runs the command with a progress line every 60 s
  local name=$1 t0 ticker; shift
  t0=$(date +%s)
  say "building $name — total elapsed $(elapsed)"
  ( exec 9>&-; while sleep 60; do say "  still building $name: $(( $(date +%s) - t0 ))s"; done ) &
  ticker=$!
  if ! "$@" >&2; then kill "$ticker" 2>/dev/null; say "FAILED building $name"; exit 1; fi
  kill "$ticker" 2>/dev/null || true
  say "built $name in $(( $(date +%s) - t0 ))s"
}

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
k8s() { # name pkg
  (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$OUT/$1.tmp" "$2") && mv "$OUT/$1.tmp" "$OUT/$1"
}
# `go install pkg@version` builds outside any module, into a staging GOBIN.
stage="$OUT/.stage"
install_at() { # cgo tags pkgs...
  local cgo=$1 tags=$2; shift 2
  rm -rf "$stage" && mkdir -p "$stage"
  (cd / && GOFLAGS= GOBIN="$stage" CGO_ENABLED=$cgo go install -trimpath -tags "$tags" -ldflags "-s -w" "$@")
}
containerd_bins() {
  local v=$CONTAINERD_VERSION m=github.com/containerd/containerd/v2/cmd
  install_at 0 "" "$m/containerd@$v" "$m/containerd-shim-runc-v2@$v" "$m/ctr@$v" &&
    mv "$stage/containerd" "$stage/containerd-shim-runc-v2" "$stage/ctr" "$OUT/"
}
runc_bin() {
  install_at 1 "seccomp urfave_cli_no_docs" "github.com/opencontainers/runc@$RUNC_VERSION" && mv "$stage/runc" "$OUT/runc"
}
cni_bins() {
  local p=github.com/containernetworking/plugins/plugins
  install_at 0 "" "$p/main/bridge@$CNI_VERSION" "$p/ipam/host-local@$CNI_VERSION" "$p/main/loopback@$CNI_VERSION" &&
    mv "$stage/bridge" "$stage/host-local" "$stage/loopback" "$OUT/cni/"
}
relay_bin() { # host port → a server inside a node's network namespace
  (cd "$here/relay" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$OUT/relay.tmp" .) && mv "$OUT/relay.tmp" "$OUT/relay"
}
pause_bin() { # a static binary that blocks until SIGTERM/SIGINT: the pod sandbox process
  (cd "$here/pause" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$OUT/pause.tmp" .) && mv "$OUT/pause.tmp" "$OUT/pause"
}

[ -x "$OUT/pause" ] || ticking pause pause_bin
[ -x "$OUT/relay" ] || ticking relay relay_bin
[ -x "$OUT/cni/bridge" ] && [ -x "$OUT/cni/host-local" ] && [ -x "$OUT/cni/loopback" ] || ticking "CNI plugins $CNI_VERSION" cni_bins
[ -x "$OUT/runc" ] || ticking "runc $RUNC_VERSION" runc_bin
[ -x "$OUT/containerd" ] && [ -x "$OUT/containerd-shim-runc-v2" ] && [ -x "$OUT/ctr" ] || ticking "containerd $CONTAINERD_VERSION" containerd_bins
[ -x "$OUT/kube-scheduler" ] || ticking kube-scheduler k8s kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
[ -x "$OUT/kubelet" ] || ticking kubelet k8s kubelet k8s.io/kubernetes/cmd/kubelet
rm -rf "$stage"

complete || { say "built kubelet does not report Kubernetes $K8S_VERSION"; exit 1; }
say "done in $(elapsed): $OUT"
echo "$OUT"
