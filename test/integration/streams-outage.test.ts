// A private cluster (one etcd + kube-apiserver) that these tests may break: its API server is
// stopped and restarted, and its etcd history is compacted to force 410 Gone.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CoreV1Api, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tap, type Subscription } from 'rxjs';
import { stringify } from 'yaml';
import { SharedCache, namespacedKey } from '../../streams/cache.js';
import { listWatch, type WatchEvent, type WatchHealth } from '../../streams/watch.js';
import { resolveBinaries } from '../harness/binaries.js';
import { Cluster, kubeconfigFor } from '../harness/cluster.js';
import { waitFor } from '../harness/https.js';

jest.setTimeout(180_000);

interface Cm {
  metadata: { name: string; namespace: string; resourceVersion: string };
}

function projectConfigMap(raw: unknown): Cm | undefined {
  const { name, namespace, resourceVersion } = (raw as V1ConfigMap).metadata ?? {};
  return name && namespace && resourceVersion ? { metadata: { name, namespace, resourceVersion } } : undefined;
}

/** The etcd client URL of a harness cluster, read from its etcd's command line. */
function etcdClientUrl(clusterDir: string): string {
  const dataDir = `--data-dir=${path.join(clusterDir, 'etcd-data')}`;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!args.includes(dataDir)) continue;
    const flag = args.find((a) => a.startsWith('--listen-client-urls='));
    if (flag && !args[0]!.endsWith('bash')) return flag.slice('--listen-client-urls='.length).split(',')[0]!;
  }
  throw new Error(`no etcd process found for ${clusterDir}`);
}

/** Writes a key outside the API's prefix, so etcd's revision moves past every resourceVersion seen. */
async function bumpEtcdRevision(clusterDir: string): Promise<string> {
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  const r = await fetch(`${etcdClientUrl(clusterDir)}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: b64('/streams-test/bump'), value: b64(String(Date.now())) }),
  });
  if (r.status !== 200) throw new Error(`etcd put failed: HTTP ${r.status} ${await r.text()}`);
  const body = (await r.json()) as { header: { revision: string } };
  return body.header.revision;
}

/** Compacts etcd up to `revision`, so older resourceVersions answer 410 Gone. */
async function compactEtcd(clusterDir: string, revision: string): Promise<void> {
  const r = await fetch(`${etcdClientUrl(clusterDir)}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision, physical: true }),
  });
  if (r.status !== 200) throw new Error(`etcd compaction failed: HTTP ${r.status} ${await r.text()}`);
}

describe('listWatch against an API server that fails', () => {
  let cluster: Cluster;
  let dir: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const namespace = 'streams';
  const subs: Subscription[] = [];
  const caches: SharedCache<Cm>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-streams-outage-'));
    cluster = await Cluster.start({ name: 'streams-outage', dir, bins: resolveBinaries(), controllerManager: false });
    kc = new KubeConfig();
    kc.loadFromString(stringify(kubeconfigFor([cluster.info])));
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  afterAll(async () => {
    subs.forEach((s) => s.unsubscribe());
    caches.forEach((c) => c.stop());
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function watchConfigMaps(opts: { relistAfterFailures?: number } = {}) {
    const events: WatchEvent<Cm>[] = [];
    const health: WatchHealth[] = [];
    const source = listWatch({
      kubeConfig: kc,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      project: projectConfigMap,
      describe: 'streams-outage configmaps',
      backoff: { initialMs: 200, maxMs: 1_000 },
      onHealth: (h) => health.push(h),
      ...opts,
    });
    const cache = new SharedCache<Cm>(source.pipe(tap((e: WatchEvent<Cm>) => events.push(e))), { keyOf: namespacedKey });
    caches.push(cache.start());
    const resets = () => events.filter((e) => e.type === 'RESET').length;
    return { cache, events, health, resets };
  }

  /** Stops the API server and returns when health says so, with how long that took after the stop. */
  async function stopApiServer(health: WatchHealth[]): Promise<number> {
    await cluster.stopApiServer();
    const stopped = Date.now();
    await waitFor('health to report the outage', () => health.at(-1)?.connected === false, 10_000);
    return Math.max(0, health.at(-1)!.since.getTime() - stopped);
  }

  it('reports an outage within seconds, then relists and follows changes once the API server is back', async () => {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'before-outage' } } });
    const { cache, health, resets } = watchConfigMaps();
    await cache.waitForSync(10_000);
    const resetsBefore = resets();

    const detectedMs = await stopApiServer(health);
    expect(health.at(-1)!.lastError).toMatch(/^streams-outage configmaps: /);
    expect(cache.get(`${namespace}/before-outage`)).toBeDefined();

    await cluster.startApiServer();
    const upAt = Date.now();
    await waitFor('health to report the API server back', () => health.at(-1)?.connected === true, 15_000);
    const recoveredMs = Date.now() - upAt;
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'after-outage' } } });
    await waitFor('the ConfigMap created after the outage', () => cache.get(`${namespace}/after-outage`) !== undefined, 10_000);
    expect(resets()).toBeGreaterThan(resetsBefore);
    expect(cache.get(`${namespace}/before-outage`)).toBeDefined();
    process.stderr.write(`outage reported ${detectedMs} ms after the API server stopped; reconnected ${recoveredMs} ms after it was ready\n`);
  });

  it('relists on 410 Gone when its resourceVersion was compacted away', async () => {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'before-compaction' } } });
    // Resume from the old resourceVersion however often it fails, so only a 410 can cause a relist.
    const { cache, health, resets } = watchConfigMaps({ relistAfterFailures: 1_000_000 });
    await cache.waitForSync(10_000);
    expect(resets()).toBe(1);

    await stopApiServer(health);
    await compactEtcd(dir, await bumpEtcdRevision(dir));
    await cluster.startApiServer();
    await waitFor('a RESET after the 410', () => resets() >= 2, 20_000);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'after-compaction' } } });
    await waitFor('the ConfigMap created after the relist', () => cache.get(`${namespace}/after-compaction`) !== undefined, 10_000);
    expect(cache.get(`${namespace}/before-compaction`)).toBeDefined();
    expect(health.at(-1)?.connected).toBe(true);
  });
});
