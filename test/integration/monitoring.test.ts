// The operations kit against real tools and real processes: the alerting rules pass `promtool
// check rules` and their unit tests pass `promtool test rules` (promtool built from its Go module);
// the prometheus-operator component renders, with the control plane's kubectl, into objects the
// Prometheus Operator's own Go types accept, which select the metrics Services and pods of
// install.yaml; and every alert expression and Grafana query (parsed by Prometheus' PromQL parser)
// reads only metrics and labels that a running controller and webhook export on /metrics.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';
import { INSTALL_NAMESPACE, IMPORT_ANNOTATION } from '../../src/constants.js';
import { adminKubeConfig, clusterInfo, createTestNamespace, kubectl, runProgram } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../harness/install.js';
import { toolBinary } from '../harness/tools.js';
import { bootstrappedPair, createImport, createPodLister, startController, waitForReady, type RunningController } from './controller-support.js';
import { createImport as createWebhookImport, createWebhookConfiguration, selfManagedSetup, startWebhook, TEST_SCOPE_LABEL, type RunningWebhook } from './webhook-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RULES = path.join(ROOT, 'manifests/monitoring/prometheus-rules.yaml');
const RULE_TESTS = path.join(ROOT, 'test/prometheus/alerts.test.yaml');
const DASHBOARD = path.join(ROOT, 'manifests/monitoring/grafana-dashboard.json');
const COMPONENT = 'manifests/components/prometheus-operator';
/** Labels Prometheus (or the Prometheus Operator) gives every target: not in /metrics, usable in queries. */
const TARGET_LABELS = new Set(['instance', 'job', 'namespace', 'pod', 'container', 'service', 'endpoint']);

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}
interface Rule {
  alert: string;
  expr: string;
}
interface Expression {
  expr: string;
  error?: string;
  selectors: { metric: string; labels: string[] }[];
  grouping: string[];
}

const alertRules = (): Rule[] => (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

/** Whether a Kubernetes label selector selects `labels`. */
function selects(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  const exprs = selector.matchExpressions ?? [];
  return (
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    exprs.every((e) =>
      e.operator === 'In' ? e.values!.includes(labels[e.key] ?? '\0') : e.operator === 'NotIn' ? !e.values!.includes(labels[e.key] ?? '\0') : e.operator === 'Exists' ? e.key in labels : !(e.key in labels),
    )
  );
}

const objects = (yaml: string): Obj[] =>
  parseAllDocuments(yaml)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

describe('monitoring: alerting rules, Prometheus Operator objects, Grafana dashboard', () => {
  let promtool: string;
  let checker: string;
  let scratch: string;

  /** The metric and label names each PromQL expression reads, from Prometheus' own parser. */
  const inspect = async (exprs: string[]): Promise<Expression[]> => {
    const r = await runProgram(checker, ['promql'], JSON.stringify(exprs));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(r.stdout) as Expression[];
  };

  beforeAll(() => {
    // Built by scripts/test.sh before the tests; the first build on a cold cache takes minutes.
    promtool = toolBinary('promtool');
    checker = toolBinary('monitoring-check');
    scratch = mkdtempSync(path.join(tmpdir(), 'mcsa-monitoring-test-'));
  }, 30 * 60_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  describe('promtool', () => {
    it('check rules: the rules file is valid', async () => {
      const r = await runProgram(promtool, ['check', 'rules', RULES]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toContain(`SUCCESS: ${alertRules().length} rules found`);
    });

    it('test rules: every case of test/prometheus/alerts.test.yaml passes', async () => {
      const r = await runProgram(promtool, ['test', 'rules', RULE_TESTS]);
      expect({ code: r.code, out: `${r.stdout}${r.stderr}` }).toEqual({ code: 0, out: expect.stringContaining('SUCCESS') });
    });

    it('test rules fails, naming each alert, when every rule never fires (taken out) or always does', async () => {
      const text = readFileSync(RULES, 'utf8');
      const dir = path.join(scratch, 'mutants');
      mkdirSync(path.join(dir, 'manifests/monitoring'), { recursive: true });
      mkdirSync(path.join(dir, 'test/prometheus'), { recursive: true });
      copyFileSync(RULE_TESTS, path.join(dir, 'test/prometheus/alerts.test.yaml'));
      // promtool compares the alerts of each case by alert name, so one run tells for every alert
      // whether its own cases catch the change.
      const rules = text.split(/^(?= {6}- alert: )/m);
      const always = rules.map((r, i) => (i === 0 ? r : r.replace(/^ {8}expr: (?:\|\n(?: {10}.*\n)+|.*\n)/m, '        expr: vector(1)\n')));
      expect(always.filter((r, i) => r === rules[i]).length).toBe(1);
      for (const [mutant, changed] of [['removed', rules[0]!.replace(/rules:\n$/, 'rules: []\n')], ['always firing', always.join('')]] as const) {
        writeFileSync(path.join(dir, 'manifests/monitoring/prometheus-rules.yaml'), changed);
        const r = await runProgram(promtool, ['test', 'rules', path.join(dir, 'test/prometheus/alerts.test.yaml')]);
        const out = `${r.stdout}${r.stderr}`;
        expect({ mutant, failed: r.code !== 0, unnamed: alertRules().map((a) => a.alert).filter((a) => !out.includes(`alertname: ${a},`)) }).toEqual({ mutant, failed: true, unnamed: [] });
      }
    });
  });

  describe(`the ${COMPONENT} component, rendered by kubectl kustomize`, () => {
    const render = async (name: string, components: string[]): Promise<Obj[]> => {
      const dir = path.join(scratch, name);
      mkdirSync(dir, { recursive: true });
      const rel = (p: string) => path.relative(dir, path.join(ROOT, p));
      writeFileSync(path.join(dir, 'kustomization.yaml'), `resources:\n  - ${rel('manifests')}\ncomponents:\n${components.map((c) => `  - ${rel(c)}\n`).join('')}`);
      const r = await kubectl(clusterInfo('cluster1').kubeconfigPath, ['kustomize', dir]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return objects(r.stdout);
    };
    const install = () => objects(readFileSync(path.join(ROOT, 'manifests/install.yaml'), 'utf8'));
    const isMonitoring = (o: Obj) => o.apiVersion.startsWith('monitoring.coreos.com/');
    interface Deployment extends Obj {
      spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { args?: string[]; ports?: { name?: string; containerPort: number }[] }[] } } };
    }
    interface Service extends Obj {
      spec: { selector: Record<string, string>; clusterIP?: string; ports: { name: string; port: number; targetPort: string | number }[] };
    }
    interface Endpoint {
      port: string;
      path: string;
      honorLabels: boolean;
    }
    const deployments = () => install().filter((o): o is Deployment => o.kind === 'Deployment');
    /** The container port a pod template names `metrics`, checked against the metrics address its args give. */
    const metricsPort = (d: Deployment) => {
      const [container] = d.spec.template.spec.containers;
      const port = container!.ports!.find((p) => p.name === 'metrics')!.containerPort;
      const flag = container!.args!.find((a) => /^--metrics-(bind-)?address=/.test(a))!;
      expect({ deployment: d.metadata.name, flagPort: Number(flag.split(':').pop()) }).toEqual({ deployment: d.metadata.name, flagPort: port });
      return port;
    };

    it('adds the PrometheusRule and a ServiceMonitor to install.yaml, leaves the rest as it is, and the rule is the rules file', async () => {
      const rendered = await render('service-monitor', [COMPONENT]);
      expect(rendered.filter((o) => !isMonitoring(o))).toEqual(install());
      const added = rendered.filter(isMonitoring);
      expect(added.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual([
        `PrometheusRule/${INSTALL_NAMESPACE}/multicluster-service-account`,
        `ServiceMonitor/${INSTALL_NAMESPACE}/multicluster-service-account`,
      ]);
      expect(added.find((o) => o.kind === 'PrometheusRule')!.spec).toEqual(parse(readFileSync(RULES, 'utf8')));
    });

    it('the ServiceMonitor scrapes both metrics Services (and no other), which reach every controller and webhook pod on its metrics port', async () => {
      const rendered = await render('service-monitor', [COMPONENT]);
      const monitor = rendered.find((o) => o.kind === 'ServiceMonitor') as Obj & { spec: { selector: LabelSelector; namespaceSelector: { matchNames: string[] }; endpoints: Endpoint[] } };
      expect(monitor.spec.namespaceSelector.matchNames).toEqual([INSTALL_NAMESPACE]);
      expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics', honorLabels: true })]);
      const services = rendered.filter((o): o is Service => o.kind === 'Service' && selects(monitor.spec.selector, o.metadata.labels));
      expect(services.map((s) => s.metadata.name).sort()).toEqual(['multicluster-service-account-controller-metrics', 'multicluster-service-account-webhook-metrics']);
      const reached = new Set<string>();
      for (const s of services) {
        expect({ service: s.metadata.name, clusterIP: s.spec.clusterIP }).toEqual({ service: s.metadata.name, clusterIP: 'None' });
        const port = s.spec.ports.find((p) => p.name === 'metrics')!;
        const targets = deployments().filter((d) => selects({ matchLabels: s.spec.selector }, d.spec.template.metadata.labels));
        expect(targets).toHaveLength(1);
        expect({ service: s.metadata.name, port: port.port }).toEqual({ service: s.metadata.name, port: metricsPort(targets[0]!) });
        expect(port.targetPort).toBe('metrics');
        reached.add(targets[0]!.metadata.name);
      }
      expect([...reached].sort()).toEqual(deployments().map((d) => d.metadata.name).sort());
    });

    it('its podmonitor and rules parts give a PodMonitor of every controller and webhook pod, on the metrics port, instead', async () => {
      const rendered = await render('pod-monitor', [`${COMPONENT}/rules`, `${COMPONENT}/podmonitor`]);
      expect(rendered.filter(isMonitoring).map((o) => o.kind).sort()).toEqual(['PodMonitor', 'PrometheusRule']);
      const monitor = rendered.find((o) => o.kind === 'PodMonitor') as Obj & { spec: { selector: LabelSelector; podMetricsEndpoints: Endpoint[] } };
      expect(monitor.spec.podMetricsEndpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics', honorLabels: true })]);
      const pods = rendered.filter((o): o is Deployment => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind));
      expect(pods.filter((d) => selects(monitor.spec.selector, d.spec.template.metadata.labels)).map((d) => d.metadata.name).sort()).toEqual(deployments().map((d) => d.metadata.name).sort());
      for (const d of deployments()) expect(metricsPort(d)).toBe(8080);
    });

    it("decode strictly into the Prometheus Operator's Go types (a misspelt or mistyped field does not)", async () => {
      const rendered = [...(await render('service-monitor', [COMPONENT])), ...(await render('pod-monitor', [`${COMPONENT}/rules`, `${COMPONENT}/podmonitor`]))].filter(isMonitoring);
      const misspelt = JSON.parse(JSON.stringify(rendered.find((o) => o.kind === 'ServiceMonitor'))) as { spec: { endpoints: Record<string, unknown>[] } };
      misspelt.spec.endpoints[0] = { ...misspelt.spec.endpoints[0], honorLabel: true };
      const mistyped = JSON.parse(JSON.stringify(rendered.find((o) => o.kind === 'PrometheusRule'))) as { spec: { groups: Record<string, unknown>[] } };
      mistyped.spec.groups[0] = { ...mistyped.spec.groups[0], rules: 'none' };
      const r = await runProgram(checker, ['objects'], JSON.stringify([...rendered, misspelt, mistyped]));
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const results = JSON.parse(r.stdout) as { kind: string; name: string; error?: string }[];
      expect(results.slice(0, rendered.length)).toEqual(rendered.map((o) => ({ kind: o.kind, name: o.metadata.name })));
      expect(results.slice(rendered.length).map((x) => x.error)).toEqual([expect.stringContaining('honorLabel'), expect.stringContaining('rules')]);
    });
  });

  describe('the /metrics of a running controller and webhook', () => {
    /** Metric name (as queried: histograms with _bucket, _sum, _count) → label names seen on its series. */
    const exported = new Map<string, Set<string>>();
    let controller: RunningController | undefined;
    let webhook: RunningWebhook | undefined;
    const cleanups: (() => Promise<void>)[] = [];

    /** Adds the families of an exposition text: `# TYPE` lines, then the label names of each sample. */
    const collect = (text: string) => {
      for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        const names = type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name!, `${name}_sum`, `${name}_count`] : [name!];
        for (const n of names) if (!exported.has(n)) exported.set(n, new Set());
      }
      for (const [, name, labels] of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} \S+$/gm)) {
        for (const [, label] of labels!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) exported.get(name!)?.add(label!);
      }
    };

    /** What an expression reads that /metrics does not have: unknown metrics, labels no series carries. */
    const unknownNames = (e: Expression): string[] => {
      const problems: string[] = [];
      if (e.error) return [`does not parse: ${e.error}`];
      const labelsOfExpr = new Set<string>();
      for (const s of e.selectors) {
        const labels = exported.get(s.metric);
        if (!labels) {
          problems.push(`metric ${s.metric || '(no name)'} is not exported`);
          continue;
        }
        for (const l of labels) labelsOfExpr.add(l);
        for (const l of s.labels) if (!labels.has(l) && !TARGET_LABELS.has(l)) problems.push(`${s.metric} has no label ${l}${labels.size === 0 ? ' (no series of it: create what makes one appear)' : ''}`);
      }
      for (const l of e.grouping) if (!labelsOfExpr.has(l) && !TARGET_LABELS.has(l)) problems.push(`no metric of the expression has the label ${l} it groups or matches by`);
      return problems;
    };

    beforeAll(async () => {
      // The controller, with series for every metric: a registration, a Ready import, and an
      // import the source refuses (403: the grant's RoleBinding taken away behind kubemcsa's back),
      // which fails and is retried.
      const pair = await bootstrappedPair('mon');
      cleanups.push(pair.teardown);
      controller = await startController();
      cleanups.push(() => controller!.stop());
      const source = adminKubeConfig('cluster2');
      await createPodLister(source, pair.remote.name, 'ready');
      await createImport('cluster1', { metadata: { name: 'ready', namespace: pair.local.name }, spec: { clusterName: 'cluster2', namespace: pair.remote.name, name: 'ready' } });
      await waitForReady('cluster1', pair.local.name, 'ready', 'True', 'TokenIssued');
      const kc2 = clusterInfo('cluster2').kubeconfigPath;
      const revoked = await kubectl(kc2, ['-n', pair.remote.name, 'delete', 'rolebinding', '-l', 'multicluster.admiralty.io/grant']);
      expect(revoked).toMatchObject({ code: 0 });
      // The importer (named after the target) may no longer mint there once the authorizer knows.
      const importer = `system:serviceaccount:${INSTALL_NAMESPACE}:cluster1`;
      await waitFor('the source to refuse the importer', async () => (await kubectl(kc2, ['auth', 'can-i', 'create', 'serviceaccounts/token', '-n', pair.remote.name, '--as', importer])).stdout.trim() === 'no', 30_000, 200);
      await createPodLister(source, pair.remote.name, 'refused');
      await createImport('cluster1', { metadata: { name: 'refused', namespace: pair.local.name }, spec: { clusterName: 'cluster2', namespace: pair.remote.name, name: 'refused' } });
      await waitFor('a failed reconcile, retried', async () => ((await controller!.metric('workqueue_retries_total')) ?? 0) > 0, 30_000, 200);
      await waitFor('the leader election gauge', async () => (await controller!.metric('leader_election_master_status')) === 1, 30_000, 200);

      // The webhook, with series for every metric: the API server calls it for a pod naming an
      // import (mutated) and for one naming an import that does not exist (looked up, denied).
      const setup = await selfManagedSetup('cluster1', 'mon-wh', cleanups);
      webhook = await startWebhook({ cluster: 'cluster1', installNamespace: setup.install, webhookConfigName: setup.mwcName, kubeconfigPath: setup.identity.kubeconfigPath });
      cleanups.push(() => webhook!.stop());
      const mwc = await createWebhookConfiguration(adminKubeConfig('cluster1'), setup.mwcName, webhook.port, setup.scope);
      cleanups.push(mwc.delete);
      const enabled = await createTestNamespace('cluster1', 'mon-pods', { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE, [TEST_SCOPE_LABEL]: setup.scope });
      cleanups.push(enabled.delete);
      await createWebhookImport('cluster1', enabled.name, 'mounted', true);
      const pod = (name: string, annotation: string) =>
        JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: enabled.name, annotations: { [IMPORT_ANNOTATION]: annotation } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } });
      const kc1 = clusterInfo('cluster1').kubeconfigPath;
      await waitFor('the API server to call the webhook', async () => {
        const r = await kubectl(kc1, ['create', '--dry-run=server', '-f', '-'], pod('missing', 'no-such-import'));
        return r.code !== 0 && r.stderr.includes('service account import "no-such-import" not found');
      }, 60_000, 250);
      const mutated = await kubectl(kc1, ['create', '--dry-run=server', '-o', 'json', '-f', '-'], pod('mounted', 'mounted'));
      expect({ code: mutated.code, mounted: mutated.stdout.includes('/var/run/secrets/admiralty.io/serviceaccountimports/mounted') }).toEqual({ code: 0, mounted: true });

      collect(await controller.metrics());
      collect(await webhook.metrics());
    }, 300_000);

    afterAll(async () => {
      for (const c of cleanups.reverse()) await c();
    }, 120_000);

    it('are read: both processes export their own families', () => {
      expect(exported.get('mcsa_imports')).toEqual(new Set(['ready', 'reason']));
      expect(exported.get('mcsa_webhook_admission_duration_seconds_bucket')).toEqual(new Set(['outcome', 'le']));
      expect(exported.has('process_resident_memory_bytes')).toBe(true);
    });

    it('every alert expression reads only exported metrics and labels', async () => {
      const rules = alertRules();
      const inspected = await inspect(rules.map((r) => r.expr));
      expect(inspected.every((e) => e.selectors.length > 0)).toBe(true);
      expect(inspected.map((e, i) => ({ alert: rules[i]!.alert, problems: unknownNames(e) }))).toEqual(rules.map((r) => ({ alert: r.alert, problems: [] })));
    });

    it('every query of the Grafana dashboard reads only exported metrics and labels', async () => {
      interface Panel {
        id: number;
        type: string;
        title: string;
        datasource?: { uid: string };
        targets?: { expr: string; datasource?: { uid: string } }[];
        panels?: Panel[];
      }
      const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string; type: string; query: string }[] } };
      expect(dashboard.templating.list).toEqual([expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' })]);
      const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, datasource: t.datasource?.uid ?? p.datasource?.uid })));
      expect(queries.length).toBeGreaterThan(20);
      expect(queries.filter((q) => q.datasource !== '${datasource}').map((q) => q.panel)).toEqual([]);
      // Grafana's interval variables, as Grafana substitutes them before the query reaches Prometheus.
      const inspected = await inspect(queries.map((q) => q.expr.replaceAll('$__rate_interval', '2m').replaceAll('$__interval', '30s')));
      expect(inspected.map((e, i) => ({ panel: queries[i]!.panel, expr: queries[i]!.expr, problems: unknownNames(e) }))).toEqual(
        queries.map((q) => ({ panel: q.panel, expr: q.expr, problems: [] })),
      );
    });

    it('the check catches a metric or a label that does not exist', async () => {
      const [metric, label, grouping] = await inspect(['rate(mcsa_no_such_total[5m])', 'mcsa_imports{cluster="x"}', 'sum by (cluster) (mcsa_imports)']);
      expect(unknownNames(metric!)).toEqual(['metric mcsa_no_such_total is not exported']);
      expect(unknownNames(label!)).toEqual(['mcsa_imports has no label cluster']);
      expect(unknownNames(grouping!)).toEqual(['no metric of the expression has the label cluster it groups or matches by']);
    });
  });
});
