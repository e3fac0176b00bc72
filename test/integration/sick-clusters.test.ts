// Sick source clusters never slow the healthy ones (issue 16, SPEC §12 fleet row), on real
// clusters: the same work on healthy clusters (imports created, rotated, deleted) measured with
// every source healthy, then while registered sources are sick in the three ways a fleet sees —
// a port that accepts TCP and never answers, a server answering 500 after 5 s, a source refusing
// the registration's token (401) — and then while a source is partitioned after its watch
// connected (its TokenRequests hang; the watch still looks healthy for up to 30 s). The sick
// clusters' imports must report why within a deadline, and the healthy ones must not wait
// behind them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Subscription } from 'rxjs';
import { API_GROUP, API_VERSION, IMPORT_LABEL, IMPORT_PLURAL, ROTATE_ANNOTATION } from '../../src/constants.js';
import { SecretAnnotations } from '../../src/secret.js';
import { listWatch } from '../../streams/watch.js';
import { pct } from '../bench/measure.js';
import { adminKubeConfig, createTestNamespace } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { readRegistration, register } from '../harness/registrations.js';
import { startFailingEndpoint, startHangingEndpoint, startRelay } from '../harness/sick-endpoints.js';
import { apis, bootstrappedPair, createImport, startController, waitForReady, type RunningController } from './controller-support.js';

const HEALTHY = ['cluster2', 'healthy-b'];
const PER_CLUSTER = 10;
/** Healthy p99 may exceed the all-healthy run's by 30 % (the SPEC target) plus this much scheduling noise of a shared 2-core machine; waiting behind a sick source costs ≥ 1 s. */
const NOISE_MS = 400;

let local: Awaited<ReturnType<typeof createTestNamespace>>;
let remote: Awaited<ReturnType<typeof createTestNamespace>>;
let teardown: (() => Promise<void>) | undefined;
let controller: RunningController | undefined;
const cleanups: Array<() => Promise<void>> = [];

/** When each import of `ns` was first seen Ready=True, and when each generated Secret's token was issued anew. */
function observe(kc: KubeConfig, ns: string) {
  const readyAt = new Map<string, number>();
  const issued = new Map<string, { value: string; at: number }[]>();
  const subs: Subscription[] = [];
  subs.push(
    listWatch<{ name: string; ready: boolean }>({
      kubeConfig: kc,
      path: `/apis/${API_GROUP}/${API_VERSION}/namespaces/${ns}/${IMPORT_PLURAL}`,
      describe: 'test imports',
      project: (raw) => {
        const o = raw as { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } };
        return { name: o.metadata.name, ready: o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false };
      },
    }).subscribe((e) => {
      for (const o of e.type === 'RESET' ? e.items : [e.object]) if (o.ready && !readyAt.has(o.name)) readyAt.set(o.name, performance.now());
    }),
  );
  subs.push(
    listWatch<{ name: string; importName: string; issued: string }>({
      kubeConfig: kc,
      path: `/api/v1/namespaces/${ns}/secrets`,
      labelSelector: IMPORT_LABEL,
      describe: 'test secrets',
      project: (raw) => {
        const o = raw as { metadata: { name: string; annotations?: Record<string, string>; ownerReferences?: { name: string }[] } };
        return { name: o.metadata.name, importName: o.metadata.ownerReferences?.[0]?.name ?? '', issued: o.metadata.annotations?.[SecretAnnotations.issued] ?? '' };
      },
    }).subscribe((e) => {
      for (const o of e.type === 'RESET' ? e.items : [e.object]) {
        const seen = issued.get(o.importName) ?? [];
        if (seen.at(-1)?.value !== o.issued) seen.push({ value: o.issued, at: performance.now() });
        issued.set(o.importName, seen);
      }
    }),
  );
  return { readyAt, issued, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

/** The healthy work: imports created at once on the healthy clusters, all rotated at once, all deleted. Latencies in ms. */
async function healthyWork(label: string) {
  const kc = adminKubeConfig('cluster1');
  const { custom } = apis('cluster1');
  const core = kc.makeApiClient(CoreV1Api);
  const seen = observe(kc, local.name);
  try {
    const names = HEALTHY.flatMap((c) => Array.from({ length: PER_CLUSTER }, (_, i) => ({ cluster: c, name: `${label}-${c}-${i}` })));
    const createdAt = new Map<string, number>();
    await Promise.all(
      names.map(async ({ cluster, name }) => {
        createdAt.set(name, performance.now());
        await createImport('cluster1', { metadata: { name, namespace: local.name }, spec: { clusterName: cluster, namespace: remote.name, name: 'default' } });
      }),
    );
    await waitFor(`${label}: every healthy import Ready`, async () => names.every(({ name }) => seen.readyAt.has(name)), 60_000, 50);
    const ready = names.map(({ name }) => seen.readyAt.get(name)! - createdAt.get(name)!);
    const rotatedAt = new Map<string, number>();
    await Promise.all(
      names.map(async ({ name }) => {
        rotatedAt.set(name, performance.now());
        await custom.patchNamespacedCustomObject(
          { group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name, body: { metadata: { annotations: { [ROTATE_ANNOTATION]: `${label}-1` } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      }),
    );
    await waitFor(`${label}: every healthy import's token rotated`, async () => names.every(({ name }) => (seen.issued.get(name)?.length ?? 0) >= 2), 60_000, 50);
    const rotated = names.map(({ name }) => seen.issued.get(name)![1]!.at - rotatedAt.get(name)!);
    await Promise.all(names.map(({ name }) => custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name })));
    await waitFor(`${label}: every healthy import's Secret deleted`, async () => {
      const left = await core.listNamespacedSecret({ namespace: local.name, labelSelector: IMPORT_LABEL });
      return !left.items.some((s) => names.some(({ name }) => s.metadata?.ownerReferences?.[0]?.name === name));
    }, 60_000, 100);
    const summary = { readyP50: pct(ready, 50), readyP99: pct(ready, 99), rotateP50: pct(rotated, 50), rotateP99: pct(rotated, 99) };
    console.log(`[sick-clusters] ${label}: created→Ready p50 ${summary.readyP50.toFixed(0)} ms, p99 ${summary.readyP99.toFixed(0)} ms; rotate→new token p50 ${summary.rotateP50.toFixed(0)} ms, p99 ${summary.rotateP99.toFixed(0)} ms (${names.length} imports)`);
    return summary;
  } finally {
    seen.stop();
  }
}

async function sickImports(cluster: string, n: number, label = 'on'): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${label}-${cluster}-${i}`);
  await Promise.all(names.map((name) => createImport('cluster1', { metadata: { name, namespace: local.name }, spec: { clusterName: cluster, namespace: remote.name, name: 'default' } })));
  return names;
}

/** Waits until every import in `names` is Ready=False with `reason`; returns how long that took. */
async function reasonsWithin(names: string[], reason: string, deadlineMs: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(names.map((name) => waitForReady('cluster1', local.name, name, 'False', reason, deadlineMs)));
  return performance.now() - t0;
}

beforeAll(async () => {
  ({ local, remote, teardown } = await bootstrappedPair('sick'));
  const cred = await readRegistration('cluster1', 'cluster2');
  const healthyB = await register('cluster1', 'healthy-b', cred);
  cleanups.push(healthyB.remove);
  controller = await startController();
  await waitForReady('cluster1', 'multicluster-service-account', 'healthy-b', 'True');
}, 180_000);

afterAll(async () => {
  await controller?.stop();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await teardown?.();
}, 180_000);

describe('sick source clusters', () => {
  it('healthy imports keep their latency while 3 registered sources hang, fail with 500 after 5 s, or refuse the registration (401); the sick ones say why', async () => {
    const warmup = await healthyWork('warmup');
    expect(warmup.readyP99).toBeGreaterThan(0);
    const baseline = await healthyWork('healthy');

    const cred = await readRegistration('cluster1', 'cluster2');
    const hang = await startHangingEndpoint();
    const failing = await startFailingEndpoint({ status: 500, delayMs: 5_000 });
    cleanups.push(hang.stop, failing.stop);
    const sickRegistrations: Array<() => Promise<void>> = [];
    for (const [name, c] of [
      ['sick-hang', { ...cred, server: hang.url, caPem: hang.caPem }],
      ['sick-500', { ...cred, server: failing.url, caPem: failing.caPem }],
      ['sick-401', { ...cred, token: 'not-a-token-the-source-knows' }],
    ] as const) {
      const r = await register('cluster1', name, c, { remoteUid: '' });
      cleanups.push(r.remove);
      sickRegistrations.push(r.remove);
    }
    const sick = {
      hang: await sickImports('sick-hang', PER_CLUSTER),
      fail: await sickImports('sick-500', PER_CLUSTER),
      refuse: await sickImports('sick-401', PER_CLUSTER),
    };
    const during = await healthyWork('sick');
    // Undici's TLS connect timeout (10 s) for the hanging port; the 5 s answer for the failing one.
    const took = {
      hang: await reasonsWithin(sick.hang, 'ClusterUnreachable', 45_000),
      fail: await reasonsWithin(sick.fail, 'ClusterUnreachable', 45_000),
      refuse: await reasonsWithin(sick.refuse, 'Unauthorized', 45_000),
    };
    console.log(`[sick-clusters] sick imports reported their reason (after the healthy work): hang ${took.hang.toFixed(0)} ms, 500 ${took.fail.toFixed(0)} ms, 401 ${took.refuse.toFixed(0)} ms more`);
    console.log(`[sick-clusters] healthy p99 ratio sick/all-healthy: Ready ${(during.readyP99 / baseline.readyP99).toFixed(2)}, rotation ${(during.rotateP99 / baseline.rotateP99).toFixed(2)}`);
    expect(during.readyP99).toBeLessThanOrEqual(baseline.readyP99 * 1.3 + NOISE_MS);
    expect(during.rotateP99).toBeLessThanOrEqual(baseline.rotateP99 * 1.3 + NOISE_MS);
    const { custom } = apis('cluster1');
    const imp = (await custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name: sick.fail[0]! })) as { status?: { conditions?: { message?: string }[] } };
    expect(imp.status?.conditions?.[0]?.message).toMatch(/cluster "sick-500" \(https:\/\/127\.0\.0\.1:\d+\) is unreachable: .*HTTP 500/);
    // No retry storm: the failing source saw a bounded number of requests (watch relists with a 5 s cap, no call per import).
    expect(failing.requests()).toBeLessThan(60);
    await Promise.all(Object.values(sick).flat().map((name) => custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name })));

    // Registrations come and go at runtime without touching the other clusters' clients or watches.
    for (const remove of sickRegistrations) await remove();
    const registryLines = () =>
      controller!
        .log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { message?: string; cluster?: string })
        .filter((l) => /^cluster (registered|re-pointed|unregistered)$/.test(l.message ?? ''));
    await waitFor('the sick registrations to be unregistered', async () => ['sick-hang', 'sick-500', 'sick-401'].every((c) => registryLines().some((l) => l.cluster === c && l.message === 'cluster unregistered')), 30_000, 100);
    for (const c of HEALTHY) expect(registryLines().filter((l) => l.cluster === c).map((l) => l.message)).toEqual(['cluster registered']);
    // A registration removed and written again at once keeps its new Secret (the controller may
    // see the new Secret before the new import, and must not take it for the old one's orphan).
    const again = await readRegistration('cluster1', 'healthy-b');
    for (let i = 0; i < 5; i++) {
      await (await register('cluster1', `flap-${i}`, again)).remove();
      await register('cluster1', `flap-${i}`, again);
      cleanups.push(() => apis('cluster1').custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: 'multicluster-service-account', plural: IMPORT_PLURAL, name: `flap-${i}` }).then(() => undefined));
    }
    for (let i = 0; i < 5; i++) await waitForReady('cluster1', 'multicluster-service-account', `flap-${i}`, 'True');
    await healthyWork('after-sick');
  }, 420_000);

  it('healthy imports do not wait behind a partitioned source whose watch still looks connected; its imports say ClusterUnreachable', async () => {
    const cred = await readRegistration('cluster1', 'cluster2');
    const relay = await startRelay(cred.server);
    cleanups.push(relay.stop);
    const r = await register('cluster1', 'partitioned', { ...cred, server: relay.url });
    cleanups.push(r.remove);
    await waitForReady('cluster1', 'multicluster-service-account', 'partitioned', 'True');
    const [probe] = await sickImports('partitioned', 1, 'probe');
    await waitForReady('cluster1', local.name, probe!, 'True');
    const baseline = await healthyWork('before-partition');

    relay.freeze();
    const stuck = await sickImports('partitioned', 2 * PER_CLUSTER);
    const during = await healthyWork('partition');
    console.log(`[sick-clusters] partition: healthy Ready p99 ${during.readyP99.toFixed(0)} ms vs ${baseline.readyP99.toFixed(0)} ms before; rotation p99 ${during.rotateP99.toFixed(0)} ms vs ${baseline.rotateP99.toFixed(0)} ms`);
    // Waiting behind the partitioned source's TokenRequests would cost their 15 s deadline; the
    // queue lets a stuck cluster hold no slot the others need beyond its first second.
    expect(during.readyP99).toBeLessThan(baseline.readyP99 + 2_000);
    expect(during.rotateP99).toBeLessThan(baseline.rotateP99 + 2_000);
    const took = await reasonsWithin(stuck, 'ClusterUnreachable', 60_000);
    console.log(`[sick-clusters] partition: its ${stuck.length} new imports said ClusterUnreachable ${took.toFixed(0)} ms after the healthy work`);
    relay.thaw();
    await waitForReady('cluster1', local.name, stuck[0]!, 'True', undefined, 60_000);
    const { custom } = apis('cluster1');
    await Promise.all([probe!, ...stuck].map((name) => custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: local.name, plural: IMPORT_PLURAL, name })));
  }, 420_000);
});
