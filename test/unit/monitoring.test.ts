// The alerting rules, their PrometheusRule, their promtool tests and their runbooks stay in step:
// one rules file (manifests/monitoring/prometheus-rules.yaml) is the source; the PrometheusRule is
// generated from it; every alert has a runbook section and promtool cases where it fires and where
// it stays quiet. test/integration/monitoring.test.ts runs promtool itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');
const RUNBOOKS = 'docs/operations/alerts.md';
const RUNBOOK_BASE = `https://github.com/multicluster-service-account/multicluster-service-account/blob/main/${RUNBOOKS}`;

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RulesFile {
  groups: { name: string; rules: Rule[] }[];
}
interface PromtoolTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const rulesFile = () => parse(read('manifests/monitoring/prometheus-rules.yaml')) as RulesFile;
const alerts = () => rulesFile().groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined);

/** GitHub's anchor for a Markdown heading. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
const runbookSections = () => [...read(RUNBOOKS).matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim());

describe('manifests/monitoring/prometheus-rules.yaml', () => {
  it('holds alerts, each once, with a severity, a summary, a description and a runbook', () => {
    const names = alerts().map((a) => a.alert);
    expect(names.length).toBeGreaterThanOrEqual(10);
    expect(new Set(names).size).toBe(names.length);
    for (const a of alerts()) {
      expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({ alert: a.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      expect({ alert: a.alert, annotations: Object.keys(a.annotations ?? {}).sort() }).toEqual({ alert: a.alert, annotations: ['description', 'runbook_url', 'summary'] });
    }
  });

  it(`links every alert to its own section of ${RUNBOOKS}, which has a section for no other`, () => {
    const sections = runbookSections().filter((h) => /^Mcsa[A-Za-z]+$/.test(h));
    for (const a of alerts()) expect({ alert: a.alert, runbook: a.annotations?.runbook_url }).toEqual({ alert: a.alert, runbook: `${RUNBOOK_BASE}#${anchor(a.alert)}` });
    expect(sections.sort()).toEqual(alerts().map((a) => a.alert).sort());
  });
});

describe('test/prometheus/alerts.test.yaml', () => {
  const suite = () => parse(read('test/prometheus/alerts.test.yaml')) as PromtoolTests;
  const cases = () => suite().tests.flatMap((t) => t.alert_rule_test ?? []);

  it('tests the rules file', () => {
    expect(suite().rule_files.map((f) => path.resolve(ROOT, 'test/prometheus', f))).toEqual([path.join(ROOT, 'manifests/monitoring/prometheus-rules.yaml')]);
  });

  it('has, for every alert, a case where it fires and one where it stays quiet', () => {
    const coverage = alerts().map((a) => ({
      alert: a.alert,
      fires: cases().some((c) => c.alertname === a.alert && c.exp_alerts.length > 0),
      quiet: cases().some((c) => c.alertname === a.alert && c.exp_alerts.length === 0),
    }));
    expect(coverage).toEqual(alerts().map((a) => ({ alert: a.alert, fires: true, quiet: true })));
  });

  it('names no alert the rules do not have', () => {
    const known = new Set(alerts().map((a) => a.alert));
    expect(cases().map((c) => c.alertname).filter((n) => !known.has(n))).toEqual([]);
  });
});

describe('the PrometheusRule of manifests/components/prometheus-operator', () => {
  const TARGET = 'manifests/components/prometheus-operator/rules/prometheusrule.yaml';
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-prometheusrule-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is what scripts/generate-prometheus-rule.sh makes of the rules file (same bytes)', () => {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/generate-prometheus-rule.sh'), '--stdout'], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toBe(read(TARGET));
  });

  it('has the rules file as its spec, in the install namespace', () => {
    const rule = parse(read(TARGET)) as { apiVersion: string; kind: string; metadata: { namespace: string }; spec: unknown };
    expect(rule).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { namespace: 'multicluster-service-account' } });
    expect(rule.spec).toEqual(rulesFile());
  });

  it('--check fails, showing the difference, when the PrometheusRule is stale', () => {
    const stale = spawnSync('bash', ['-c', `cp -r "${ROOT}/scripts" "${ROOT}/manifests" "${scratch}/" && sed -i 's/for: 10m/for: 11m/' "${scratch}/manifests/monitoring/prometheus-rules.yaml" && bash "${scratch}/scripts/generate-prometheus-rule.sh" --check`], { encoding: 'utf8' });
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('out of date');
    expect(stale.stderr).toMatch(/^\+ +for: 11m$/m);
  });
});
