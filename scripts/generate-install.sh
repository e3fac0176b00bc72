#!/usr/bin/env bash
# Renders the kustomize base (manifests/kustomization.yaml) into manifests/install.yaml with the
# kustomize embedded in kubectl: `npm run manifests`.
#
#   scripts/generate-install.sh              write manifests/install.yaml
#   scripts/generate-install.sh -o FILE      write FILE instead ("-" for stdout)
#   scripts/generate-install.sh --check      exit 1 (and show a diff) if install.yaml is stale
#
# Writing manifests/install.yaml also copies manifests/crd/ into the Helm chart (a chart cannot read
# files outside its directory); --check checks those copies too.
#
# kubectl: $KUBECTL if set, else the control plane's kubectl ($MCSA_K8S_BIN_DIR, or the directory
# printed by test/control-plane/build.sh), else the kubectl on PATH (with a warning).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target="$root/manifests/install.yaml"
out=$target
check=false
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=true ;;
    -o|--output) out=${2:?"$1 needs a file"}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "generate-install: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

find_kubectl() {
  if [ -n "${KUBECTL:-}" ]; then echo "$KUBECTL"; return; fi
  if [ -n "${MCSA_K8S_BIN_DIR:-}" ] && [ -x "$MCSA_K8S_BIN_DIR/kubectl" ]; then echo "$MCSA_K8S_BIN_DIR/kubectl"; return; fi
  local dir
  if dir=$(bash "$root/test/control-plane/build.sh" 2>/dev/null | tail -n 1) && [ -x "$dir/kubectl" ]; then echo "$dir/kubectl"; return; fi
  if command -v kubectl >/dev/null; then
    echo "generate-install: the control plane's kubectl is unavailable; using $(command -v kubectl) (its kustomize may render differently)" >&2
    command -v kubectl; return
  fi
  echo "generate-install: no kubectl found (set KUBECTL)" >&2
  return 1
}

kubectl=$(find_kubectl)
rendered=$(mktemp -t mcsa-install.XXXXXX)
trap 'rm -f "$rendered"' EXIT
{
  echo "# multicluster-service-account: everything an installation needs, in one file."
  echo "# Generated from manifests/kustomization.yaml by scripts/generate-install.sh (npm run manifests); do not edit."
  echo "# Install or upgrade: kubectl apply --server-side -f install.yaml. Uninstall: kubectl delete -f install.yaml."
  "$kubectl" kustomize "$root/manifests"
} >"$rendered"

chart_crds="$root/manifests/helm/multicluster-service-account/files/crds"
crds() { for f in "$root"/manifests/crd/*.yaml; do [ "${f##*/}" = kustomization.yaml ] || echo "$f"; done; }

if $check; then
  stale=0
  if ! cmp -s "$rendered" "$target"; then
    echo "generate-install: manifests/install.yaml is out of date; run npm run manifests" >&2
    diff -u "$target" "$rendered" >&2 || true
    stale=1
  fi
  for f in $(crds); do
    cmp -s "$f" "$chart_crds/${f##*/}" || { echo "generate-install: the Helm chart's copy of ${f#"$root"/} is out of date; run npm run manifests" >&2; stale=1; }
  done
  exit $stale
fi
if [ "$out" = - ]; then cat "$rendered"; else cp "$rendered" "$out.tmp.$$" && mv "$out.tmp.$$" "$out"; fi
if [ "$out" = "$target" ]; then for f in $(crds); do cp "$f" "$chart_crds/"; done; fi
