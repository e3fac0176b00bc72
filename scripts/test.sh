#!/usr/bin/env bash
# Runs every test: typecheck, lint, unit tests, then integration and e2e tests against real
# control planes (built from Go modules on first use and cached outside the repository), then the
# e2e journeys on clusters of the oldest and the newest supported Kubernetes versions, mixed both
# ways, then the e2e suite on real nodes (kubelet, containerd, runc: built and cached the same way).
# Ends with the plain line "N passed, N failed" computed from Jest's JSON results.
set -uo pipefail
cd "$(dirname "$0")/.."
results=${TEST_RESULTS_DIR:-$(mktemp -d -t mcsa-test-results.XXXXXX)}
mkdir -p "$results"
status=0
step() { printf '\n== %s\n' "$*"; }

step "typecheck"; npx tsc --noEmit -p tsconfig.json || status=1
step "lint"; npx eslint . || status=1

step "control planes (build or reuse cache)"
if bin_dir=$(bash test/control-plane/build.sh | tail -n 1); then
  export MCSA_K8S_BIN_DIR="$bin_dir"
else
  echo "control-plane build failed"; status=1
fi

# The other supported Kubernetes minors (test/control-plane/k8s-<minor>): the compat runs mix the
# oldest and the newest.
default_minor=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' test/control-plane/go.mod | sed 's/^v//' | cut -d. -f1,2)
minors=$(printf '%s\n' "$default_minor" $(ls -d test/control-plane/k8s-* 2>/dev/null | sed 's|.*/k8s-||') | sort -V)
oldest=$(echo "$minors" | head -n 1); newest=$(echo "$minors" | tail -n 1)
for minor in $minors; do
  [ "$minor" = "$default_minor" ] && continue
  step "control planes of Kubernetes $minor (build or reuse cache)"
  bash test/control-plane/build.sh "$minor" >/dev/null || { echo "control-plane build of Kubernetes $minor failed"; status=1; }
done

step "nodes (build or reuse cache)"
if node_dir=$(bash test/control-plane/build-node.sh | tail -n 1); then
  export MCSA_NODE_BIN_DIR="$node_dir"
else
  echo "node build failed"; status=1
fi

step "test tools (helm, promtool, …: build or reuse cache)"
for tool in test/tools/*/; do
  [ -f "$tool/go.mod" ] || continue
  bash test/tools/build.sh "$(basename "$tool")" >/dev/null || { echo "building test tool $tool failed"; status=1; }
done

jest() { node --experimental-vm-modules node_modules/jest/bin/jest.js "$@"; }
step "unit tests"
jest --selectProjects unit --json --outputFile="$results/unit.json" || status=1
if [ -n "${MCSA_K8S_BIN_DIR:-}" ]; then
  step "integration and e2e tests (real clusters)"
  jest --selectProjects integration --runInBand --detectOpenHandles \
    --json --outputFile="$results/integration.json" || status=1
fi
if [ -n "${MCSA_K8S_BIN_DIR:-}" ] && [ "$oldest" != "$newest" ]; then
  for pair in "$newest,$oldest" "$oldest,$newest"; do
    step "e2e journeys on mixed Kubernetes versions (cluster1 ${pair%,*} target, cluster2 ${pair#*,} source)"
    MCSA_TEST_K8S_VERSIONS=$pair jest --selectProjects compat --runInBand --detectOpenHandles \
      --json --outputFile="$results/compat-${pair/,/-}.json" || status=1
  done
fi
if [ -n "${MCSA_K8S_BIN_DIR:-}" ] && [ -n "${MCSA_NODE_BIN_DIR:-}" ]; then
  step "e2e tests on real nodes (the project's images as pods)"
  jest --selectProjects nodes --runInBand --detectOpenHandles \
    --json --outputFile="$results/nodes.json" || status=1
fi

node scripts/summarize-jest.mjs "$results"/*.json || status=1
exit $status
