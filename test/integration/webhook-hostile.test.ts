import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { IMPORT_ANNOTATION } from '../../src/constants.js';
import { volumeNameForImport } from '../../src/naming.js';
import { adminKubeConfig, clusterInfo, createTestNamespace, testClusters } from '../harness/env.js';
import { pct } from '../bench/measure.js';
import { runAdmissionProbe, type ProbeOptions, type ProbeResult } from '../harness/admission-probe.js';
import { startHostileProcess, type HostileCounts } from '../harness/hostile-admissions.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../harness/install.js';
import { waitFor } from '../harness/https.js';
import { createImport, createWebhookConfiguration, manifestWebhookConfiguration, selfManagedSetup, startWebhook, TEST_SCOPE_LABEL, type RunningWebhook } from './webhook-process.js';

const CLUSTER = 'cluster1';
const execFileP = promisify(execFile);

function metricValue(text: string, name: string, labels: string): number {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Cumulative bucket counts of one histogram series: `le` (seconds) → count. */
function buckets(text: string, name: string, labels: string): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{(?:${labels},)?le="([^"]+)"(?:,${labels})?\\} (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/**
 * The p99 between two scrapes interpolated linearly inside its bucket, as Prometheus's
 * histogram_quantile does: an estimate, where p99Bound is a bound.
 */
function p99Estimate(before: Map<number, number>, after: Map<number, number>): number {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const rank = 0.99 * total;
  let lower = 0;
  let below = 0;
  for (const le of [...after.keys()].sort((a, b) => a - b)) {
    const count = (after.get(le) ?? 0) - (before.get(le) ?? 0);
    if (count >= rank) return le === Infinity ? lower : lower + ((le - lower) * (rank - below)) / Math.max(count - below, 1);
    lower = le;
    below = count;
  }
  return Infinity;
}

/** The smallest bucket bound under which 99 % of the observations between two scrapes fell. */
function p99Bound(before: Map<number, number>, after: Map<number, number>): { bound: number; count: number } {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of [...after.keys()].sort((a, b) => a - b)) {
    if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= 0.99 * total) return { bound: le, count: total };
  }
  return { bound: Infinity, count: total };
}

/**
 * The API server's own timing of its calls to our webhook (`apiserver_admission_webhook_admission_duration_seconds`,
 * admitted requests only), from its /metrics: the admission latency a pod creation sees, TLS and
 * network included, without the rest of the API server's work. Cumulative counts per bucket bound.
 */
async function apiServerWebhookBuckets(webhookName: string): Promise<Map<number, number>> {
  // Several MiB of text: more than the harness kubectl's default output buffer.
  const { stdout } = await execFileP(testClusters().kubectl, [`--kubeconfig=${clusterInfo(CLUSTER).kubeconfigPath}`, 'get', '--raw', '/metrics'], {
    maxBuffer: 256 * 1024 * 1024,
    timeout: 60_000,
  });
  const out = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('apiserver_admission_webhook_admission_duration_seconds_bucket{')) continue;
    if (!line.includes(`name="${webhookName}"`) || !line.includes('rejected="false"') || !line.includes('type="admit"')) continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(line.split(' ').pop()));
  }
  return out;
}

/** A probe's figures: annotated and un-annotated pods, p50 / p99 in ms. */
function describeProbe(r: ProbeResult): string {
  return `annotated p50 ${pct(r.annotated, 50).toFixed(1)} / p99 ${pct(r.annotated, 99).toFixed(1)} ms (n=${r.annotated.length}), un-annotated (no webhook call) p50 ${pct(r.bare, 50).toFixed(1)} / p99 ${pct(r.bare, 99).toFixed(1)} ms, failures ${r.failures.length}`;
}

describe('admission that no tenant can stall', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let webhook: RunningWebhook | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let enabled: string;
  let evil: string;

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    core = kc.makeApiClient(CoreV1Api);
    const { scope, install, mwcName, identity } = await selfManagedSetup(CLUSTER, 'wh-hostile-install', cleanups);
    webhook = await startWebhook({ cluster: CLUSTER, installNamespace: install, webhookConfigName: mwcName, kubeconfigPath: identity.kubeconfigPath });
    cleanups.push(() => webhook!.stop());
    const mwc = await createWebhookConfiguration(kc, mwcName, webhook.port, scope);
    cleanups.push(mwc.delete);
    const labels = { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE, [TEST_SCOPE_LABEL]: scope };
    const on = await createTestNamespace(CLUSTER, 'wh-ordinary', labels);
    cleanups.push(on.delete);
    const bad = await createTestNamespace(CLUSTER, 'wh-hostile', labels);
    cleanups.push(bad.delete);
    enabled = on.name;
    evil = bad.name;
    await createImport(CLUSTER, enabled, 'steady', true);
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 60_000);

  const ordinary = {
    metadata: { generateName: 'ordinary-', annotations: { [IMPORT_ANNOTATION]: 'steady' } },
    spec: { containers: [{ name: 'app', image: 'busybox' }] },
  };
  /** One ordinary annotated pod through the API server (dry run: admission included, nothing stored), from the test's own client. */
  const admitOrdinary = async (): Promise<void> => {
    const pod = await core.createNamespacedPod({ namespace: enabled, body: ordinary, dryRun: 'All' });
    if (!(pod.spec?.volumes ?? []).some((v) => v.name === volumeNameForImport('steady'))) throw new Error('admitted without the import mounted');
  };

  /**
   * The figure is taken by a probe in a process of its own (test/harness/admission-probe.ts), a
   * lean client with one kept-alive connection: timed from the test's event loop with
   * client-node, the same dry-run creations took ~10 ms more at p50 (12.1 against 3.3 ms, quiet),
   * and the Jest worker's pauses landed in the tail. Those are the measuring client's, not
   * admission's.
   */
  const probe = (pairs: number, minDurationMs = 0): ProbeOptions => ({
    kubeconfigPath: clusterInfo(CLUSTER).kubeconfigPath,
    context: clusterInfo(CLUSTER).name,
    namespace: enabled,
    annotation: { key: IMPORT_ANNOTATION, value: 'steady' },
    expectVolume: volumeNameForImport('steady'),
    pairs,
    warmup: 10,
    minDurationMs,
  });

  it('admits ordinary annotated pods with p99 ≤ 50 ms and no failure while hostile admissions run', async () => {
    await waitFor('the API server to call the webhook', async () => admitOrdinary().then(() => true, () => false), 60_000, 200);
    for (let i = 0; i < 30; i++) await admitOrdinary(); // warm-up: the webhook's connections, JIT
    // The same measurement without hostile load, on the same (shared) machine, for comparison.
    const DURATION = 'mcsa_webhook_admission_duration_seconds';
    const quietBefore = buckets(await webhook!.metrics(), DURATION, 'outcome="mutated"');
    const quiet = await runAdmissionProbe(probe(150)).result;
    const WEBHOOK_NAME = manifestWebhookConfiguration().webhooks![0]!.name;
    const quietAdmission = p99Bound(quietBefore, buckets(await webhook!.metrics(), DURATION, 'outcome="mutated"'));
    console.log(`no hostile load: ordinary admissions at the webhook p99 ≤ ${quietAdmission.bound * 1000} ms (n=${quietAdmission.count}); through the API server: ${describeProbe(quiet)}`);
    expect(quiet.failures).toEqual([]);

    const hostile = startHostileProcess({
      webhookPort: webhook!.port,
      api: { kubeconfigPath: clusterInfo(CLUSTER).kubeconfigPath, context: clusterInfo(CLUSTER).name, namespace: evil },
      directClients: 4,
      apiClients: 2,
    });
    let counts: HostileCounts;
    const mutatedBefore = buckets(await webhook!.metrics(), DURATION, 'outcome="mutated"');
    const apiServerBefore = await apiServerWebhookBuckets(WEBHOOK_NAME);
    const cpuBefore = metricValue(await webhook!.metrics(), 'process_cpu_seconds_total', '');
    const wallBefore = performance.now();
    let measured: ProbeResult;
    try {
      await hostile.ready;
      // Under way: the webhook has refused oversized bodies and denied pods naming too many imports.
      await waitFor('the hostile stream to reach the webhook', async () => {
        const m = await webhook!.metrics();
        return metricValue(m, 'controller_runtime_webhook_requests_total', 'webhook="/mutate-pods",code="413"') > 2 &&
          metricValue(m, 'mcsa_webhook_admissions_total', 'webhook="/mutate-pods",decision="denied",mutated="false"') > 2;
      }, 60_000, 200);
      const run = runAdmissionProbe(probe(300, 10_000));
      measured = await run.result.finally(run.kill);
    } finally {
      counts = await hostile.stop().catch((e: unknown) => {
        hostile.kill();
        throw e;
      });
    }
    const figure = pct(measured.annotated, 99);
    const after = await webhook!.metrics();
    const admission = p99Bound(mutatedBefore, buckets(after, DURATION, 'outcome="mutated"'));
    // The API server's buckets are coarse (5 ms, 25 ms, 100 ms, …): its figure is a bound too.
    const apiServerAfter = await apiServerWebhookBuckets(WEBHOOK_NAME);
    const asSeen = p99Bound(apiServerBefore, apiServerAfter);
    const asSeenEstimate = p99Estimate(apiServerBefore, apiServerAfter);
    console.log(`webhook CPU during the hostile phase: ${(((metricValue(after, 'process_cpu_seconds_total', '') - cpuBefore) * 1000) / (performance.now() - wallBefore) * 100).toFixed(0)} % of a core`);
    console.log(`webhook event loop lag p99 since the last scrape: ${(metricValue(after, 'nodejs_eventloop_lag_p99_seconds', '') * 1000).toFixed(1)} ms`);
    const hostileTotal = Object.values(counts).reduce((n, byOutcome) => n + Object.values(byOutcome).reduce((a, b) => a + b, 0), 0);
    console.log(`hostile load: the API server's calls to the webhook (its own histogram) p99 ≤ ${asSeen.bound * 1000} ms, interpolated ${(asSeenEstimate * 1000).toFixed(1)} ms (n=${asSeen.count}); ordinary admissions at the webhook p99 ≤ ${admission.bound * 1000} ms (n=${admission.count}); through the API server: ${describeProbe(measured)}; while ${hostileTotal} hostile requests ran: ${JSON.stringify(counts)}`);

    expect(measured.failures).toEqual([]);
    expect(measured.annotated.length).toBeGreaterThanOrEqual(300);
    // The acceptance figure: ordinary annotated pods created through the API server.
    expect(figure).toBeLessThanOrEqual(50);
    expect(admission.count).toBeGreaterThanOrEqual(measured.annotated.length);
    expect(admission.bound).toBeLessThanOrEqual(0.05);
    // The API server timed every ordinary admission's webhook call (denied hostile pods are
    // rejected="true"), within the finest bound its buckets (5, 25, 100 ms, …) can show for 50 ms.
    expect(asSeen.count).toBeGreaterThanOrEqual(measured.annotated.length);
    expect(asSeen.bound).toBeLessThanOrEqual(0.1);
    // The hostile stream really ran, every kind of it, and got only refusals: 4xx or a denial, never a 5xx.
    for (const kind of ['many-imports', 'missing-imports', 'empty-containers', 'array-body', 'oversized', 'oversized-chunked', 'malformed'])
      expect(Object.keys(counts[`direct ${kind}`] ?? {}).length).toBeGreaterThan(0);
    expect(counts['direct many-imports']).toEqual({ 200: expect.any(Number) }); // a denial in an AdmissionReview
    expect(counts['direct missing-imports']).toEqual({ 200: expect.any(Number) });
    // Refused bodies are answered 413 and the connection is closed without reading the rest: a
    // client still writing (these bodies are megabytes) may see the connection close instead.
    for (const kind of ['direct empty-containers', 'direct array-body', 'direct oversized', 'direct oversized-chunked']) {
      expect(counts[kind]!['413']).toBeGreaterThan(0);
      expect(Object.keys(counts[kind]!).filter((k) => k !== '413' && k !== 'connection-error')).toEqual([]);
    }
    expect(Object.keys(counts['direct malformed']!)).toEqual(['400']);
    expect(Object.keys(counts['api many-imports']!)).toEqual(['denied 400']);
    expect(Object.keys(counts['api missing-imports']!)).toEqual(['denied 403']);

    const m = await webhook!.metrics();
    expect(metricValue(m, 'controller_runtime_webhook_requests_total', 'webhook="/mutate-pods",code="500"')).toBe(0);
  }, 180_000);

  it('creates un-annotated pods in enabled namespaces while every webhook replica is down', async () => {
    await webhook!.stop();
    const plain = { metadata: { name: 'plain' }, spec: { containers: [{ name: 'app', image: 'busybox' }] } };
    const created = await core.createNamespacedPod({ namespace: enabled, body: plain });
    expect(created.metadata?.annotations?.[IMPORT_ANNOTATION]).toBeUndefined();
    const generated = await core.createNamespacedPod({ namespace: enabled, body: { metadata: { generateName: 'plain-', annotations: { unrelated: 'x' } }, spec: plain.spec } });
    expect(generated.metadata?.name).toMatch(/^plain-/);
    // The configuration still applies to annotated pods: with the webhook down they fail closed.
    await expect(core.createNamespacedPod({ namespace: enabled, body: ordinary, dryRun: 'All' })).rejects.toMatchObject({ body: expect.stringContaining('failed calling webhook') });
  }, 60_000);
});
