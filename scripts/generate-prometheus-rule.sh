#!/usr/bin/env bash
# Writes the PrometheusRule of the prometheus-operator component from the plain Prometheus rules
# file, the single source of the alerts (run by npm run manifests):
#   manifests/monitoring/prometheus-rules.yaml → manifests/components/prometheus-operator/rules/prometheusrule.yaml
#
#   scripts/generate-prometheus-rule.sh            write the PrometheusRule
#   scripts/generate-prometheus-rule.sh --stdout   print it instead
#   scripts/generate-prometheus-rule.sh --check    exit 1 (and show a diff) if it is stale
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_file="$root/manifests/monitoring/prometheus-rules.yaml"
target="$root/manifests/components/prometheus-operator/rules/prometheusrule.yaml"
case ${1:-} in
  '') mode=write ;;
  --stdout | --check) mode=${1#--} ;;
  -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "generate-prometheus-rule: unknown argument $1" >&2; exit 2 ;;
esac

grep -q '^groups:$' "$source_file" || { echo "generate-prometheus-rule: no top-level groups: in $source_file" >&2; exit 1; }
rendered=$(mktemp -t mcsa-prometheusrule.XXXXXX)
trap 'rm -f "$rendered"' EXIT
{
  cat <<'HEAD'
# Generated from manifests/monitoring/prometheus-rules.yaml by scripts/generate-prometheus-rule.sh
# (npm run manifests); edit that file, not this one. Runbooks: docs/operations/alerts.md.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: multicluster-service-account
  namespace: multicluster-service-account
  labels:
    app.kubernetes.io/name: multicluster-service-account
spec:
HEAD
  # The rules file from its groups: on, as the spec (blank lines stay blank).
  sed -n '/^groups:$/,$p' "$source_file" | sed 's/^\(.\)/  \1/'
} >"$rendered"

case $mode in
  stdout) cat "$rendered" ;;
  write) cp "$rendered" "$target.tmp.$$" && mv "$target.tmp.$$" "$target" ;;
  check)
    cmp -s "$rendered" "$target" && exit 0
    echo "generate-prometheus-rule: $target is out of date; run npm run manifests" >&2
    diff -u "$target" "$rendered" >&2 || true
    exit 1 ;;
esac
