import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Subscription } from 'rxjs';
import { SharedCache, namespacedKey, type CacheChange } from '../../streams/cache.js';
import { kubeTransport, type ListWatchTransport } from '../../streams/kube-transport.js';
import { listWatch, type WatchEvent, type WatchHealth } from '../../streams/watch.js';
import { adminKubeConfig, clusterInfo, createTestNamespace } from '../harness/env.js';
import { waitFor } from '../harness/https.js';

interface ConfigMapView {
  metadata: { name: string; namespace: string; resourceVersion: string };
  data: Record<string, string>;
}

/** Keeps only what the tests look at (no managedFields). */
function projectConfigMap(raw: unknown): ConfigMapView | undefined {
  const cm = raw as V1ConfigMap;
  const { name, namespace, resourceVersion } = cm.metadata ?? {};
  if (!name || !namespace || !resourceVersion) return undefined;
  return { metadata: { name, namespace, resourceVersion }, data: cm.data ?? {} };
}

const CLUSTER = 'cluster1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('listWatch + SharedCache on a real API server', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let ns: { name: string; delete: () => Promise<void> };
  const subs: Subscription[] = [];
  const caches: SharedCache<ConfigMapView>[] = [];

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    core = kc.makeApiClient(CoreV1Api);
    ns = await createTestNamespace(CLUSTER, 'streams-watch');
  });

  afterAll(async () => {
    subs.forEach((s) => s.unsubscribe());
    caches.forEach((c) => c.stop());
    await ns.delete();
  });

  const path = () => `/api/v1/namespaces/${ns.name}/configmaps`;
  const createCm = (name: string, data: Record<string, string>) =>
    core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name }, data } });

  function cacheOf(opts: { transport?: ListWatchTransport; idleTimeoutMs?: number; labelSelector?: string } = {}) {
    const events: WatchEvent<ConfigMapView>[] = [];
    const health: WatchHealth[] = [];
    const source = listWatch({
      kubeConfig: kc,
      path: path(),
      project: projectConfigMap,
      describe: `${CLUSTER} configmaps`,
      onHealth: (h) => health.push(h),
      ...opts,
    });
    const cache = new SharedCache(source, { keyOf: namespacedKey, describe: `${CLUSTER} configmaps` });
    const changes: CacheChange<ConfigMapView>[] = [];
    subs.push(cache.changes$.subscribe((c) => changes.push(c)));
    subs.push(source.subscribe((e) => events.push(e)));
    caches.push(cache);
    cache.start();
    return { cache, changes, events, health };
  }

  function countingTransport() {
    const real = kubeTransport(kc);
    let n = 0;
    const transport: ListWatchTransport = {
      list: real.list,
      watch: (...args) => {
        n++;
        return real.watch(...args);
      },
    };
    return { transport, watches: () => n };
  }

  it('lists what exists, then sees adds, updates and deletes', async () => {
    await createCm('before', { a: '1' });
    const { cache, changes, events, health } = cacheOf();
    await cache.waitForSync(10_000);
    expect(cache.get(`${ns.name}/before`)?.data).toEqual({ a: '1' });
    expect(health[0]).toMatchObject({ connected: true });

    await createCm('added', { b: '1' });
    await waitFor('the added ConfigMap in the cache', () => cache.get(`${ns.name}/added`) !== undefined, 10_000);
    await core.patchNamespacedConfigMap(
      { namespace: ns.name, name: 'added', body: [{ op: 'replace', path: '/data/b', value: '2' }] },
    );
    await waitFor('the update in the cache', () => cache.get(`${ns.name}/added`)?.data.b === '2', 10_000);
    await core.deleteNamespacedConfigMap({ namespace: ns.name, name: 'before' });
    await waitFor('the delete in the cache', () => cache.get(`${ns.name}/before`) === undefined, 10_000);

    expect(changes.map((c) => `${c.type} ${c.key.split('/')[1]}`)).toEqual(['added before', 'added added', 'updated added', 'deleted before']);
    expect(changes[2]!.before?.data.b).toBe('1');
    expect(events.filter((e) => e.type === 'RESET')).toHaveLength(1);
    expect(JSON.stringify(events)).not.toContain('managedFields');
  });

  it('resumes from the last resourceVersion after an idle timeout, without relisting', async () => {
    const { transport, watches } = countingTransport();
    const { cache, events } = cacheOf({ idleTimeoutMs: 500, transport });
    await cache.waitForSync(10_000);
    await waitFor('three idle re-watches in a quiet namespace', () => watches() >= 3, 10_000);
    await createCm('after-idle', { c: '1' });
    await waitFor('the ConfigMap created after idle re-watches', () => cache.get(`${ns.name}/after-idle`) !== undefined, 10_000);
    expect(events.filter((e) => e.type === 'RESET')).toHaveLength(1);
  });

  it('reports a Forbidden list in health instead of failing', async () => {
    const sa = 'no-rights';
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: sa } } });
    const tr = await core.createNamespacedServiceAccountToken({ namespace: ns.name, name: sa, body: { spec: { audiences: [] } } });
    const info = clusterInfo(CLUSTER);
    const weak = new KubeConfig();
    weak.loadFromOptions({
      clusters: [{ name: 'c', server: info.server, caData: Buffer.from(info.caPem).toString('base64') }],
      users: [{ name: 'no-rights', token: tr.status!.token }],
      contexts: [{ name: 'c', cluster: 'c', user: 'no-rights' }],
      currentContext: 'c',
    });
    const health: WatchHealth[] = [];
    const errors: unknown[] = [];
    const sub = listWatch({
      kubeConfig: weak,
      path: path(),
      project: projectConfigMap,
      describe: `${CLUSTER} configmaps`,
      backoff: { initialMs: 100, maxMs: 200 },
      onHealth: (h) => health.push(h),
    }).subscribe({ error: (e: unknown) => errors.push(e) });
    subs.push(sub);
    await waitFor('an unhealthy report', () => health.length > 0, 10_000);
    sub.unsubscribe();
    expect(health[0]).toMatchObject({ connected: false, statusCode: 403 });
    expect(health[0]!.lastError).toMatch(/configmaps.*403 Forbidden/);
    expect(health[0]!.lastError).not.toContain(tr.status!.token);
    expect(errors).toEqual([]);
  });

  it('releases its connections when stopped: nothing of the watch keeps the process alive', async () => {
    // In a process of its own, so that no other test's connection counts: it must exit by itself.
    const info = clusterInfo(CLUSTER);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/harness/watch-then-stop.ts', info.kubeconfigPath, info.name, ns.name], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ended = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000).unref())]);
    if (ended === 'running') child.kill('SIGKILL');
    await exited;
    if (ended !== 0) throw new Error(`the watching process ${ended === 'running' ? 'was still running after 30 s' : `exited with ${ended}`}: ${err.slice(0, 2000)}`);
    const counts = JSON.parse(out.trim().split('\n').at(-1)!) as { before: number; during: number; after: number };
    expect(counts.during).toBeGreaterThan(counts.before);
    expect(counts.after).toBe(counts.before);
  }, 40_000);
});
