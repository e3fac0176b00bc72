/**
 * The live rounds of bench:fleet's sick phase in a process of their own: what a tenant sees of
 * the controller (an import created → Ready, a rotation asked → the new token in its Secret, an
 * import deleted → its Secret gone), timed by a process that holds nothing else. In the bench's
 * own process the samples also carried that process's own pauses (its heap holds the sweep, every
 * registration and a watch of 3,000 background imports): an event-loop pause of 48–61 ms there at
 * the wrong second decided a round's p99 (docs/benchmarks.md, runs Q and R).
 *
 * Protocol (Node IPC): the worker reads its job file (written by fleet.ts, mode 0600), lists its two
 * watches (the imports' Ready conditions, the generated Secrets' rotation values) and sends
 * `{ ready: true }`. Then, for each `{ round: tag }` the bench sends, it runs one round (imports
 * named `<tag>-<j>`) and answers `{ round: tag, samples }`; the bench changes the clusters between
 * rounds, the watches staying open. It exits when the bench disconnects. Its log lines go to stderr.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, ROTATE_ANNOTATION } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { SecretAnnotations } from '../../src/secret.js';
import { listWatch } from '../../streams/watch.js';
import { cpuBetween, cpuSnapshot, importBody, loopPauses, metricSum, pct, readyWatcher, type CpuSnapshot } from './measure.js';

export interface LiveJob {
  /** An admin kubeconfig of the target cluster, and its context. */
  kubeconfig: string;
  context: string;
  namespace: string;
  remote: { namespace: string; name: string };
  /** The controller's metrics endpoint (`http://127.0.0.1:<port>/metrics`), and its process. */
  metricsUrl: string;
  controllerPid: number;
  imports: number;
  perSecond: number;
  deadlineMs: number;
  /** The healthy registrations the imports name, round-robin, with the API server behind each. */
  clusters: Array<{ name: string; source: string }>;
}

/** Latencies (ms) of one round's live work, by operation. */
export interface LiveSamples {
  created: number[];
  rotated: number[];
  deleted: number[];
}

/** From the worker to the bench. */
export type LiveMessage = { ready: true } | { round: string; samples: LiveSamples };
/** From the bench to the worker. */
export interface LiveCommand {
  round: string;
}

const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const fmt = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(1));

/** Rejects when `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `fn(j)` for j < count at `perSecond` (open loop: a slow answer does not delay the next start); resolves when all are done. */
async function paced(count: number, perSecond: number, fn: (j: number) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  const running: Promise<void>[] = [];
  for (let j = 0; j < count; j++) {
    const wait = t0 + (j * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    running.push(fn(j));
  }
  await Promise.all(running);
}

/** Watches the generated Secrets of `ns`: resolves when a Secret carries a rotation value, or is gone. */
function secretWatcher(kc: KubeConfig, ns: string) {
  const rotation = new Map<string, string>();
  const seenAt = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  let listed = false;
  const fire = (key: string) => {
    waiters.get(key)?.();
    waiters.delete(key);
  };
  const sub = listWatch<{ name: string; rotation: string }>({
    kubeConfig: kc,
    path: `/api/v1/namespaces/${ns}/secrets`,
    describe: 'bench secrets',
    project: (raw) => {
      const o = raw as { metadata: { name: string; annotations?: Record<string, string> } };
      return { name: o.metadata.name, rotation: o.metadata.annotations?.[SecretAnnotations.rotation] ?? '' };
    },
  }).subscribe((e) => {
    if (e.type === 'RESET') listed = true;
    const objs = e.type === 'RESET' ? e.items : [e.object];
    for (const o of objs) {
      if (e.type === 'DELETED') {
        rotation.delete(o.name);
        fire(`${o.name} deleted`);
        continue;
      }
      if (!rotation.has(o.name)) seenAt.set(o.name, performance.now());
      rotation.set(o.name, o.rotation);
      fire(`${o.name}=${o.rotation}`);
    }
  });
  const until = (key: string, done: boolean) => (done ? Promise.resolve() : new Promise<void>((r) => waiters.set(key, r)));
  return {
    get listed() {
      return listed;
    },
    rotated: (secret: string, value: string) => until(`${secret}=${value}`, rotation.get(secret) === value),
    deleted: (secret: string) => until(`${secret} deleted`, !rotation.has(secret)),
    /** When this watch first saw the Secret (`performance.now()`). */
    seenAt: (secret: string) => seenAt.get(secret),
    stop: () => sub.unsubscribe(),
  };
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LiveJob;
  const send = (m: LiveMessage) => new Promise<void>((resolve, reject) => process.send!(m, (e: Error | null) => (e ? reject(e) : resolve())));
  const kc = new KubeConfig();
  kc.loadFromFile(job.kubeconfig);
  kc.setCurrentContext(job.context);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ns = job.namespace;
  const live = readyWatcher(kc, ns);
  const secrets = secretWatcher(kc, ns);
  try {
    const t0 = performance.now();
    while (!(live.listed && secrets.listed)) {
      if (performance.now() - t0 > 30_000) throw new Error(`the live watches of namespace ${ns} did not list within 30 s`);
      await sleep(20);
    }

    // The controller between two scrapes: its GC (prom-client's nodejs_gc_duration_seconds), its
    // longest event-loop delay, its reconciles. Only these metrics are asked for: a full scrape
    // renders every import's token gauges, work the controller would do just before the timed
    // creations. (Collecting nodejs_eventloop_lag_seconds sets the max and resets prom-client's
    // event-loop delay histogram, so the second scrape reports the longest delay in between.)
    const scrape = async () => {
      const names = ['nodejs_gc_duration_seconds', 'controller_runtime_reconcile_total', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_max_seconds'];
      const r = await fetch(`${job.metricsUrl}?${names.map((n) => `name[]=${encodeURIComponent(n)}`).join('&')}`);
      const text = await r.text();
      return { majorS: metricSum(text, 'nodejs_gc_duration_seconds_sum{kind="major"}'), majorN: metricSum(text, 'nodejs_gc_duration_seconds_count{kind="major"}'), allS: metricSum(text, 'nodejs_gc_duration_seconds_sum'), reconciles: metricSum(text, 'controller_runtime_reconcile_total'), lagMaxS: metricSum(text, 'nodejs_eventloop_lag_max_seconds') };
    };
    type Scrape = Awaited<ReturnType<typeof scrape>>;
    const controllerBetween = (a: Scrape, b: Scrape) =>
      `GC ${(b.majorN - a.majorN).toFixed(0)} major, ${((b.majorS - a.majorS) * 1000).toFixed(0)} ms major, ${((b.allS - a.allS) * 1000).toFixed(0)} ms in all, longest event-loop delay ${(b.lagMaxS * 1000).toFixed(0)} ms, ${(b.reconciles - a.reconciles).toFixed(0)} reconciles`;
    const pausesText = (ps: Array<{ atS: number; ms: number }>) => ps.map((x) => `${x.ms.toFixed(0)}@${x.atS.toFixed(1)}`).join(' ') || 'none';
    // Where the machine's CPU went meanwhile: a round slow as a whole on a busy machine is the
    // machine's, one slow while the machine idles is waiting somewhere.
    const pids = { controller: job.controllerPid, 'the bench': process.ppid, 'this worker': process.pid };
    const cpu = () => cpuSnapshot(Object.values(pids));
    const cpuText = (a: CpuSnapshot, b: CpuSnapshot) => cpuBetween(a, b, pids, { 'API servers': ['kube-apiserver'], etcd: ['etcd'], 'controller-managers': ['kube-controller'] });

    const round = async (tag: string): Promise<LiveSamples> => {
      const created: number[] = [];
      const rotated: number[] = [];
      const deleted: number[] = [];
      const name = (j: number) => `${tag}-${j}`;
      const cluster = (j: number) => job.clusters[j % job.clusters.length]!;
      // What the tail is made of: when in the round the slow creations started, and when the
      // Secret appeared.
      const timeline: Array<{ atS: number; ms: number; secretMs: number; source: string }> = [];
      const s0 = await scrape();
      const c0 = cpu();
      const roundStart = performance.now();
      // Wall-clock, to line the round's slow moments up with the clusters' and the controller's logs.
      const startedAt = new Date().toISOString();
      const createPauses = loopPauses(roundStart);
      await paced(job.imports, job.perSecond, async (j) => {
        await custom.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, body: importBody(ns, name(j), cluster(j).name, job.remote) });
        const t0 = performance.now();
        await within(live.when(name(j)), job.deadlineMs, `${ns}/${name(j)} Ready`);
        const ms = Math.max(0, live.readyAt.get(name(j))! - t0);
        created.push(ms);
        timeline.push({ atS: (t0 - roundStart) / 1000, ms, secretMs: (secrets.seenAt(secretNameForImport(name(j))) ?? NaN) - t0, source: cluster(j).source });
      });
      const createPausesSeen = createPauses.stop();
      const c1 = cpu();
      const s1 = await scrape();
      const rotateStart = performance.now();
      const rotationsAt = new Date().toISOString();
      const rotateTimeline: Array<{ atS: number; ms: number }> = [];
      const rotatePauses = loopPauses(rotateStart);
      const value = `${tag}-r`;
      await paced(job.imports, job.perSecond, async (j) => {
        await custom.patchNamespacedCustomObject(
          { group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, name: name(j), body: { metadata: { annotations: { [ROTATE_ANNOTATION]: value } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        const t0 = performance.now();
        await within(secrets.rotated(secretNameForImport(name(j)), value), job.deadlineMs, `${ns}/${name(j)} rotated`);
        const ms = performance.now() - t0;
        rotated.push(ms);
        rotateTimeline.push({ atS: (t0 - rotateStart) / 1000, ms });
      });
      const rotatePausesSeen = rotatePauses.stop();
      const c2 = cpu();
      const s2 = await scrape();
      await paced(job.imports, job.perSecond, async (j) => {
        await custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, name: name(j) });
        const t0 = performance.now();
        await within(secrets.deleted(secretNameForImport(name(j))), job.deadlineMs, `${ns}/${name(j)}'s Secret deleted`);
        deleted.push(performance.now() - t0);
      });
      log(`live round ${tag} (creations from ${startedAt}, rotations from ${rotationsAt}): created→Ready p50 ${fmt(pct(created, 50))} / p99 ${fmt(pct(created, 99))} ms; rotate→new token p50 ${fmt(pct(rotated, 50))} / p99 ${fmt(pct(rotated, 99))} ms; delete→Secret gone p50 ${fmt(pct(deleted, 50))} / p99 ${fmt(pct(deleted, 99))} ms`);
      const slowest = timeline.sort((a, b) => b.ms - a.ms).slice(0, 8);
      log(`  created→Ready slowest (ms at s into the round, Secret seen after ms, source): ${slowest.map((x) => `${x.ms.toFixed(0)}@${x.atS.toFixed(1)}(${x.secretMs.toFixed(0)},${x.source})`).join(' ')}; controller while creating: ${controllerBetween(s0, s1)}; the live worker's event-loop pauses over 20 ms: ${pausesText(createPausesSeen)}; CPU: ${cpuText(c0, c1)}`);
      const slowestRotations = rotateTimeline.sort((a, b) => b.ms - a.ms).slice(0, 8);
      log(`  rotate→new token slowest (ms at s into the rotations): ${slowestRotations.map((x) => `${x.ms.toFixed(0)}@${x.atS.toFixed(1)}`).join(' ')}; controller while rotating: ${controllerBetween(s1, s2)}; the live worker's event-loop pauses over 20 ms: ${pausesText(rotatePausesSeen)}; CPU: ${cpuText(c1, c2)}`);
      return { created, rotated, deleted };
    };

    // One round at a time, in the order asked; the bench waits for each answer before it asks again.
    let queue = Promise.resolve();
    const failed = new Promise<never>((_, reject) => {
      process.on('message', (m: LiveCommand) => {
        queue = queue.then(async () => send({ round: m.round, samples: await round(m.round) })).catch(reject);
      });
    });
    const disconnected = new Promise<void>((resolve) => process.once('disconnect', resolve));
    await send({ ready: true });
    await Promise.race([disconnected, failed]);
  } finally {
    live.stop();
    secrets.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`live worker failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
