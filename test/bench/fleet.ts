/**
 * Fleet benchmark (`npm run bench:fleet`): how the controller's cost grows with the number of
 * registered source clusters, and what sick clusters do to the healthy ones (issue 16, SPEC §12
 * fleet row).
 *
 * K real API servers (cluster2…, default 4) stand behind N registrations (`fleet-<i>`, spread
 * round-robin), each a distinct cluster to the controller: its own importer ServiceAccount
 * (`importer-<i>`, the objects `kubemcsa bootstrap` applies for a target of that name), its own
 * grant of `bench/bench` (the objects and record `kubemcsa grant` writes), its own 24 h token.
 *
 * Sweep, per N (default 10, 100, 300), M imports per cluster (default 10):
 * - bare client (a process of its own, test/bench/bare-worker.ts): the controller's three calls
 *   per import, C workers, one client per registration;
 * - controller: the N × M imports created while no controller runs, then a fresh controller (run
 *   as its Deployment would, compiled) converges them, timed from the moment it leads to its own
 *   cache holding every import Ready.
 * For each: time, peak RSS (VmHWM), CPU per import, TokenRequests per import; for the controller
 * also its open watch connections. At the largest N a control point converges as many imports as
 * the second largest N has (over all the largest N's clusters): the RSS slope per cluster is the
 * difference of these two peaks (same imports) over the difference in clusters, so the import
 * count does not confound it.
 *
 * Sick phase (at the largest N, or --sick-at N): with the controller of that N still running,
 * rounds of live work (each: P imports of healthy clusters created at R/s, then rotated, then
 * deleted; timed by a lean process of their own, test/bench/live-worker.ts, so that this process's
 * own pauses are not counted as the controller's latency), Q with every cluster healthy and
 * Q with 10 % of the registrations sick, alternating (healthy, sick, healthy, …: a stretch of slow
 * machine then slows both conditions). Sick is a third each way: a port that never answers, a
 * server answering 500 after 5 s, a token the source refuses (its signature altered: 401); each
 * registration is rewritten to turn sick and back to healthy. The first sick round starts as the
 * clusters turn sick, while their imports must report their reason (timed from then); later ones
 * once every sick import reports it again. The p99 of each condition is taken over all its
 * rounds' samples (Q × P: with the defaults the 6th worst of 600, where one round's p99 is the 2nd
 * worst of 200 and moves with a single slow sample); ratio sick / healthy (target ≤ 1.3×). Each
 * round's own p99 is printed beside it. Then a soak: the sick clusters keep failing while the
 * controller's RSS is sampled every 15 s.
 *
 * Flags: --sources K (4), --clusters 10,100,300, --imports-per-cluster M (10), --concurrency C (10),
 * --sick-at N (largest), --live-imports P (200), --live-rate R (20 per second), --live-rounds Q (3),
 * --sick-deadline S (120),
 * --soak-minutes (10; 0 skips the soak), --out <file.json> (under the OS temp dir by default),
 * --write-docs-plot (docs/img/fleet.svg from this run); --plot-from <results.json> only writes that plot
 * from an earlier run's results.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { build } from 'esbuild';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { bootstrapPlan, namespaceManifest } from '../../src/bootstrap/plan.js';
import { grantPlan } from '../../src/bootstrap/grant.js';
import { grantAnnotationValue, type Grant } from '../../src/consent/grants.js';
import { Reasons } from '../../src/api/import.js';
import { ClusterClient } from '../../cli/lib/cluster.js';
import { ClusterSet } from '../harness/clusters.js';
import { adminKubeConfig, clusterInfo } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { manifestContainer, serviceAccountKubeconfig } from '../harness/deployment.js';
import { register, type RegistrationCredential } from '../harness/registrations.js';
import { startFailingEndpoint, startHangingEndpoint } from '../harness/sick-endpoints.js';
import { CONTROLLER_SA, createPolicy, installControllerPrerequisites, startController, type RunningController } from '../integration/controller-support.js';
import { pool, type BareRegistration } from './bare-client.js';
import { cpuMs, rssMiB } from './proc.js';
import { childPid } from './peer.js';
import { buildProject, createBulk, ROOT, waitUntilIdle } from './common.js';
import { importBody, median, metricSum, pct, readyWatcher, type ImportState } from './measure.js';
import type { BareJob, BareResult } from './bare-worker.js';
import type { LiveCommand, LiveJob, LiveMessage, LiveSamples } from './live-worker.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const num = (name: string, dflt: number) => Number(arg(name) ?? dflt);
const K = num('sources', 4);
const SWEEP = (arg('clusters') ?? '10,100,300').split(',').map(Number).sort((a, b) => a - b);
const M = num('imports-per-cluster', 10);
const C = num('concurrency', 10);
const MAX_N = SWEEP.at(-1)!;
const SICK_AT = num('sick-at', MAX_N);
const LIVE = num('live-imports', 200);
const LIVE_RATE = num('live-rate', 20);
const LIVE_ROUNDS = Math.max(1, num('live-rounds', 3));
const SICK_DEADLINE_S = num('sick-deadline', 120);
const SOAK_MIN = num('soak-minutes', 10);
const OUT = arg('out') ?? path.join(os.tmpdir(), `mcsa-bench-fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const WRITE_PLOT = process.argv.includes('--write-docs-plot');

const REMOTE = { namespace: 'bench', name: 'bench' };
const NS = { bare: 'fleet-bare', ctrl: 'fleet-ctrl', live: 'fleet-live' };
const SOAK_SAMPLE_MS = 15_000;
/** SPEC §12, fleet row (and issue 16). */
const TARGETS = { timeRatio: 1.5, slopeMiBPerCluster: 0.5, watchesPerCluster: 2, p99Ratio: 1.3, flatPercent: 5 };

const log = (m: string) => console.log(`[bench] ${m}`);
const fmt = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

interface Registration {
  index: number;
  name: string;
  source: string;
  importer: string;
  importerUid: string;
  cred: RegistrationCredential;
  grant: Grant;
  remove(): Promise<void>;
}

interface SideResult {
  ms: number;
  hwmMiB: number;
  cpuMsPerImport: number;
  tokenRequestsPerImport: number;
}
interface ControllerResult extends SideResult {
  watches: number;
}
interface SweepPoint {
  clusters: number;
  imports: number;
  controller: ControllerResult;
  bare: SideResult & { rssBeforeMiB: number };
}
const LIVE_OPS = ['created', 'rotated', 'deleted'] as const;
/** One condition's live latency: p50 and p99 over all its rounds' samples, and each round's own p99. */
type LiveResult = Record<(typeof LIVE_OPS)[number], { p50: number; p99: number; roundP99: number[] }> & { rounds: number; samplesPerRound: number };

function liveResult(rounds: LiveSamples[]): LiveResult {
  const op = (k: (typeof LIVE_OPS)[number]) => {
    const all = rounds.flatMap((r) => r[k]);
    return { p50: pct(all, 50), p99: pct(all, 99), roundP99: rounds.map((r) => pct(r[k], 99)) };
  };
  return { created: op('created'), rotated: op('rotated'), deleted: op('deleted'), rounds: rounds.length, samplesPerRound: LIVE };
}
type Sickness = 'hang' | 'fail500' | 'unauthorized';
const EXPECTED_REASON: Record<Sickness, string[]> = {
  hang: [Reasons.ClusterUnreachable],
  fail500: [Reasons.ClusterUnreachable],
  unauthorized: [Reasons.Unauthorized],
};

const phases: Array<[string, number]> = [];
async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    const s = (performance.now() - t0) / 1000;
    phases.push([name, s]);
    log(`phase ${name}: ${s.toFixed(1)} s`);
  }
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const num = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0);
  const den = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

async function main(): Promise<void> {
  const tStart = performance.now();
  if (!SWEEP.includes(SICK_AT) && SICK_AT !== 0) throw new Error(`--sick-at ${SICK_AT} is not one of --clusters ${SWEEP.join(',')}`);
  const sources = Array.from({ length: K }, (_, i) => `cluster${i + 2}`);
  const loadStart = os.loadavg();
  log(`${K} source API servers, sweep N = ${SWEEP.join(', ')} clusters × ${M} imports, concurrency ${C}; sick phase at N = ${SICK_AT}, ${LIVE} live imports at ${LIVE_RATE}/s, soak ${SOAK_MIN} min; ${os.cpus().length} CPUs, load ${loadStart.map((l) => l.toFixed(2)).join(' ')}`);
  await phase('build', async () => buildProject());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-bench-fleet-'));
  // The bare client runs bundled, as the controller does (one module, no transpiler in memory),
  // from dist/ (built above) where the package's own package.json is found.
  const bareWorker = path.join(ROOT, 'dist/bench/bare-worker.mjs');
  // …and with the Node/V8 flags of the controller's Deployment. The live worker (the sick phase's
  // timed rounds) is bundled the same way, and runs with Node's defaults.
  const liveWorker = path.join(ROOT, 'dist/bench/live-worker.mjs');
  const controllerNodeFlags = manifestContainer('manifests/controller/deployment.yaml', 'controller').command.slice(1).filter((a) => a.startsWith('--'));
  for (const [entry, outfile] of [['bare-worker.ts', bareWorker], ['live-worker.ts', liveWorker]] as const) {
    await build({
      entryPoints: [path.join(ROOT, 'test/bench', entry)], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node22', logLevel: 'warning',
      banner: { js: "import { createRequire as __mcsaCreateRequire } from 'node:module'; const require = __mcsaCreateRequire(import.meta.url);" },
    });
  }
  const set = await phase('clusters', () => ClusterSet.start({ count: K + 1, log })).catch((e: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  process.env.MCSA_TEST_CLUSTERS = set.statePath;
  const { kubeconfigPath } = set.info;
  let controller: RunningController | undefined;
  const endpoints: Array<{ stop(): Promise<void>; hits(): number }> = [];
  const watchers: Array<{ stop(): void }> = [];
  try {
    const admin1 = adminKubeConfig('cluster1');
    const core1 = admin1.makeApiClient(CoreV1Api);
    const custom1 = admin1.makeApiClient(CustomObjectsApi);
    const sourceClient = (s: string) => {
      const c = clusterInfo(s);
      return new ClusterClient('source', s, { kc: adminKubeConfig(s), contextName: s, clusterName: s, server: c.server, caPem: c.caPem, skipTLSVerify: false, namespace: 'default', origin: 'bench' });
    };
    const clients = new Map(sources.map((s) => [s, sourceClient(s)]));
    const localKubeconfig = path.join(dir, 'kubeconfig');

    await phase('setup', async () => {
      await installControllerPrerequisites('cluster1');
      for (const ns of Object.values(NS)) await core1.createNamespace({ body: { metadata: { name: ns } } });
      await createPolicy('cluster1', 'fleet', { mappings: Object.values(NS).map((namespace) => ({ namespace, remoteNamespace: REMOTE.namespace, serviceAccounts: [REMOTE.name] })) });
      await serviceAccountKubeconfig('cluster1', INSTALL_NAMESPACE, CONTROLLER_SA, localKubeconfig, 24 * 3600);
      // In each source: the granted ServiceAccount, and what every importer shares (install
      // namespace, admission policy, read ClusterRole), applied once.
      const shared = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'ClusterRole']);
      await Promise.all(sources.map(async (s) => {
        const c = clients.get(s)!;
        const plan = bootstrapPlan({ targetName: 'importer-0', sourceName: s });
        for (const m of [namespaceManifest(REMOTE.namespace), plan.sourceNamespace, ...plan.source.filter((m) => shared.has(m.kind))]) await c.apply(m);
        await c.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: REMOTE.name, namespace: REMOTE.namespace } });
      }));
    });

    // Registrations, added as the sweep grows (they are never shared: each has its own importer).
    const regs: Registration[] = [];
    const addRegistrations = async (n: number) => {
      const indices = Array.from({ length: n - regs.length }, (_, j) => regs.length + j);
      const added: Registration[] = [];
      await pool(indices, 16, async (i) => {
        const source = sources[i % K]!;
        const c = clients.get(source)!;
        const importer = `importer-${i}`;
        const name = `fleet-${i}`;
        // What `kubemcsa bootstrap` applies in the source for a target named `importer-<i>`…
        const plan = bootstrapPlan({ targetName: importer, sourceName: name });
        let importerUid = '';
        for (const m of plan.source.filter((m) => !['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'ClusterRole'].includes(m.kind))) {
          const r = await c.apply(m);
          if (m.kind === 'ServiceAccount') importerUid = r.meta.metadata.uid ?? '';
        }
        // …what `kubemcsa grant bench -n bench` writes: the objects, then the record naming the anchor…
        const gp = grantPlan(importer, { namespace: REMOTE.namespace, serviceAccount: REMOTE.name });
        let anchorUid: string | undefined;
        for (const m of gp.objects) {
          const r = await c.apply(m);
          if (m.kind === 'Secret') anchorUid = r.meta.metadata.uid;
        }
        const grant: Grant = { ...gp.grant, ...(anchorUid ? { anchorUid } : {}) };
        await c.patchAnnotations(gp.record.importer, { [gp.record.key]: grantAnnotationValue(grant) });
        // …and the registration: a 24 h token of the importer, written into cluster1.
        const core = adminKubeConfig(source).makeApiClient(CoreV1Api);
        const tr = await core.createNamespacedServiceAccountToken({ namespace: INSTALL_NAMESPACE, name: importer, body: { spec: { expirationSeconds: 24 * 3600 } } });
        const info = clusterInfo(source);
        const cred: RegistrationCredential = { server: info.server, caPem: info.caPem, token: tr.status!.token!, importer: { namespace: INSTALL_NAMESPACE, name: importer } };
        const { remove } = await register('cluster1', name, cred, { remoteUid: importerUid });
        added.push({ index: i, name, source, importer, importerUid, cred, grant, remove });
      });
      regs.push(...added.sort((a, b) => a.index - b.index));
    };

    const bareRegistrations = (n: number): Array<[string, BareRegistration]> =>
      regs.slice(0, n).map((r) => [r.name, { server: r.cred.server, caPem: r.cred.caPem, token: r.cred.token, importer: r.importer, grant: r.grant }]);
    const createImports = (ns: string, clusters: number, count: number, prefix = 'imp') =>
      createBulk(kubeconfigPath, Array.from({ length: count }, (_, j) => importBody(ns, `${prefix}-${j}`, regs[j % clusters]!.name, REMOTE)));
    const clearNamespace = async (ns: string) => {
      await custom1.deleteCollectionNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL });
      await core1.deleteCollectionNamespacedSecret({ namespace: ns });
      await waitFor(`namespace ${ns} to be empty`, async () => {
        const imports = (await custom1.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, limit: 1 })) as { items: unknown[] };
        return imports.items.length === 0 && (await core1.listNamespacedSecret({ namespace: ns, limit: 1 })).items.length === 0;
      }, 300_000, 250);
    };

    const bareRun = async (n: number, imports: number): Promise<SweepPoint['bare']> => {
      await createImports(NS.bare, n, imports);
      const jobFile = path.join(dir, 'bare-job.json');
      const job: BareJob = { kubeconfig: localKubeconfig, namespace: NS.bare, concurrency: C, remote: REMOTE, registrations: bareRegistrations(n) };
      writeFileSync(jobFile, JSON.stringify(job), { mode: 0o600 });
      const child = spawn(process.execPath, [...controllerNodeFlags, bareWorker, jobFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      rmSync(jobFile, { force: true });
      if (code !== 0) throw new Error(`the bare worker exited with ${code}`);
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as BareResult;
      if (r.imports !== imports) throw new Error(`the bare worker converged ${r.imports} imports, not ${imports}`);
      await clearNamespace(NS.bare);
      return { ms: r.ms, hwmMiB: r.hwmMiB, rssBeforeMiB: r.rssBeforeMiB, cpuMsPerImport: r.cpuMs / imports, tokenRequestsPerImport: r.tokenRequests / imports };
    };

    /** A fresh controller converging `imports` waiting imports of N clusters; left running. */
    const controllerRun = async (n: number, imports: number): Promise<{ result: ControllerResult; pid: number }> => {
      await createImports(NS.ctrl, n, imports);
      controller = await startController({ extra: [`--concurrency=${C}`], compiled: true });
      const ctrl = controller;
      const pid = childPid(ctrl.process.pid, 'streams/controller/main');
      if (!pid) throw new Error('cannot find the controller process');
      await waitFor('the controller to lead', () => /became leader/.test(ctrl.log()), 60_000, 50);
      const leaderLine = ctrl.log().split('\n').find((l) => l.includes('became leader'))!;
      const t0 = Date.parse((JSON.parse(leaderLine) as { timestamp: string }).timestamp);
      // Ready as the controller's own cache sees it (its mcsa_imports gauge): the imports plus the registrations.
      let shown = 0;
      await waitFor(`all ${imports} imports Ready`, async () => {
        const ready = (await ctrl.metric('mcsa_imports', 'ready="True",reason="TokenIssued"')) ?? 0;
        if (ready - shown >= 1000) log(`  ${(shown = ready)}/${imports + n} Ready`);
        return ready >= imports + n;
      }, 900_000, 100);
      const ms = Date.now() - t0;
      const metrics = await ctrl.metrics();
      const mib = (name: string) => (metricSum(metrics, name) / 1048576).toFixed(0);
      log(`  converged: RSS now ${rssMiB(pid, 'VmRSS').toFixed(0)} MiB (peak ${rssMiB(pid, 'VmHWM').toFixed(0)}); V8 heap used ${mib('nodejs_heap_size_used_bytes')} of ${mib('nodejs_heap_size_total_bytes')} MiB, external ${mib('nodejs_external_memory_bytes')} MiB`);
      return {
        pid,
        result: {
          ms,
          hwmMiB: rssMiB(pid, 'VmHWM'),
          cpuMsPerImport: cpuMs(pid) / imports,
          tokenRequestsPerImport: metricSum(metrics, 'mcsa_token_requests_total') / imports,
          watches: metricSum(metrics, 'mcsa_watch_connections'),
        },
      };
    };
    const stopController = async () => {
      await controller?.stop();
      controller = undefined;
      await clearNamespace(NS.ctrl);
    };

    const sweep: SweepPoint[] = [];
    // The RSS control point: the second largest N's import count, spread over the largest N.
    const refN = SWEEP.length > 1 ? SWEEP.at(-2)! : undefined;
    let control: { clusters: number; imports: number; controller: ControllerResult } | undefined;
    let kept: { pid: number } | undefined;
    for (const n of SWEEP) {
      await phase(`registrations to ${n}`, () => addRegistrations(n));
      const imports = n * M;
      if (n === MAX_N && refN !== undefined) {
        control = await phase(`control N=${n}`, async () => {
          const { result } = await controllerRun(n, refN * M);
          log(`control: ${refN * M} imports over ${n} clusters: controller ${(result.ms / 1000).toFixed(1)} s, peak RSS ${result.hwmMiB.toFixed(0)} MiB`);
          await stopController();
          return { clusters: n, imports: refN * M, controller: result };
        });
      }
      const point = await phase(`N=${n}`, async () => {
        const bare = await bareRun(n, imports);
        log(`N=${n}: bare ${(bare.ms / 1000).toFixed(1)} s, peak RSS ${bare.hwmMiB.toFixed(0)} MiB`);
        const { result, pid } = await controllerRun(n, imports);
        log(`N=${n}: controller ${(result.ms / 1000).toFixed(1)} s, peak RSS ${result.hwmMiB.toFixed(0)} MiB, ${result.watches} watches`);
        if (n === SICK_AT && n === MAX_N) kept = { pid };
        else await stopController();
        return { clusters: n, imports, controller: result, bare };
      });
      sweep.push(point);
    }

    // Sick phase.
    let sick: Record<string, unknown> | undefined;
    let soak: Record<string, unknown> | undefined;
    if (SICK_AT > 0) {
      if (!kept) {
        await phase(`background N=${SICK_AT}`, async () => {
          for (const r of regs.splice(SICK_AT)) await r.remove();
          kept = { pid: (await controllerRun(SICK_AT, SICK_AT * M)).pid };
        });
      }
      const pid = kept!.pid;
      const ctrl = controller!;
      const n = SICK_AT;
      const sickCount = Math.max(3, Math.round(n / 10));
      const kinds: Sickness[] = ['hang', 'fail500', 'unauthorized'];
      const sickRegs = Array.from({ length: sickCount }, (_, k) => ({ reg: regs[Math.floor((k * n) / sickCount)]!, kind: kinds[k % 3]! }));
      const sickKind = new Map(sickRegs.map((s) => [s.reg.name, s.kind]));
      const healthy = regs.slice(0, n).filter((r) => !sickKind.has(r.name));

      // The live rounds run in a process of their own (test/bench/live-worker.ts): this one's heap
      // holds the sweep, every registration and a watch of the background imports, and its own
      // event-loop pauses would be timed as the controller's latency.
      const startLiveWorker = async () => {
        const jobFile = path.join(dir, 'live-job.json');
        const job: LiveJob = {
          kubeconfig: kubeconfigPath, context: 'cluster1', namespace: NS.live, remote: REMOTE,
          metricsUrl: `http://127.0.0.1:${ctrl.metricsPort}/metrics`,
          controllerPid: pid,
          imports: LIVE, perSecond: LIVE_RATE, deadlineMs: 120_000,
          clusters: healthy.map((r) => ({ name: r.name, source: r.source })),
        };
        writeFileSync(jobFile, JSON.stringify(job), { mode: 0o600 });
        const child = spawn(process.execPath, [liveWorker, jobFile], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' } });
        const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the live worker exited with ${code}`))));
        exited.catch(() => undefined); // read through next(); not unhandled when it exits at the end
        const next = <M extends LiveMessage>(accept: (m: LiveMessage) => m is M) =>
          Promise.race([exited, new Promise<M>((resolve) => {
            const on = (m: LiveMessage) => {
              if (!accept(m)) return;
              child.off('message', on);
              resolve(m);
            };
            child.on('message', on);
          })]);
        const stop = () => {
          if (child.connected) child.disconnect();
          if (child.exitCode === null && child.signalCode === null) child.kill();
        };
        try {
          await next((m): m is { ready: true } => 'ready' in m);
        } catch (e) {
          stop();
          throw e;
        } finally {
          rmSync(jobFile, { force: true });
        }
        return {
          round: async (tag: string): Promise<LiveSamples> => {
            const answer = next((m): m is { round: string; samples: LiveSamples } => 'round' in m && m.round === tag);
            const command: LiveCommand = { round: tag };
            child.send(command);
            return (await answer).samples;
          },
          stop,
        };
      };

      // The sick clusters' imports (M each, Ready) must report why within the deadline.
      const sickSince = new Map<string, { kind: Sickness; at: number }>();
      const reported = new Map<string, { kind: Sickness; ms: number; reason: string }>();
      const lastReason = new Map<string, string>();
      const states = new Map<string, ImportState>();
      const bg = readyWatcher(admin1, NS.ctrl, (s) => {
        states.set(s.name, s);
        const since = sickSince.get(s.cluster);
        if (!since) return;
        lastReason.set(s.name, `${s.ready}/${s.reason}`);
        if (s.ready === 'False' && EXPECTED_REASON[since.kind].includes(s.reason) && !reported.has(s.name)) reported.set(s.name, { kind: since.kind, ms: performance.now() - since.at, reason: s.reason });
      });
      watchers.push(bg);
      await waitFor('the background watch to list', () => bg.listed, 60_000, 20);
      const sickImports = () => [...states.values()].filter((st) => sickKind.has(st.cluster));
      const expected = sickCount * M;

      // Turning a cluster sick or healthy rewrites its registration (removed, written again): sick,
      // it points at a hanging or a failing endpoint, or carries a token the source refuses (its
      // signature altered: 401); healthy, it is what it was.
      const removers = new Map(sickRegs.map((s) => [s.reg.name, s.reg.remove]));
      const sickEndpoints = new Map<string, { url: string; caPem: string }>();
      const sickCredential = async (reg: Registration, kind: Sickness): Promise<RegistrationCredential> => {
        if (kind === 'unauthorized') {
          const [header, payload, signature = ''] = reg.cred.token.split('.');
          return { ...reg.cred, token: `${header}.${payload}.${[...signature].reverse().join('')}` };
        }
        let ep = sickEndpoints.get(reg.name);
        if (!ep) {
          const started = kind === 'hang' ? await startHangingEndpoint() : await startFailingEndpoint({ status: 500, delayMs: 5_000 });
          endpoints.push({ stop: () => started.stop(), hits: () => ('connections' in started ? started.connections() : started.requests()) });
          sickEndpoints.set(reg.name, (ep = { url: started.url, caPem: started.caPem }));
        }
        return { ...reg.cred, server: ep.url, caPem: ep.caPem };
      };
      const rewrite = async (reg: Registration, cred: RegistrationCredential) => {
        const { remove } = await register('cluster1', reg.name, cred, { remoteUid: reg.importerUid });
        removers.set(reg.name, remove);
      };
      const removeSick = async () => {
        for (const { reg } of sickRegs) await removers.get(reg.name)!();
      };
      /** The first time: the registrations are removed, and written again once the controller has
       * seen the removal (their imports report ClusterNotFound, its queue is empty), so that the
       * time each sick import takes to report its reason starts from one known moment. (A removal
       * and a rewrite at once are handled too, as later turns do: the orphan clean-up asks the API
       * server which import exists before it deletes a Secret; integration test sick-clusters.) */
      const turnSickFirst = async () => {
        await removeSick();
        await waitUntilIdle(ctrl, 'the controller to see the sick registrations removed', 120_000, 100, () =>
          sickImports().every((st) => st.reason === Reasons.ClusterNotFound),
        );
        for (const { reg, kind } of sickRegs) {
          await rewrite(reg, await sickCredential(reg, kind));
          sickSince.set(reg.name, { kind, at: performance.now() });
        }
        // Wrapped: awaiting turnSickFirst() must not wait for the reasons.
        return { reasons: waitFor(`the sick clusters' ${expected} imports to report their reason`, () => reported.size >= expected, SICK_DEADLINE_S * 1000, 100).then(() => true, () => false) };
      };
      /** Later times: rewritten at once; the rounds start once every sick import reports its reason again. */
      const turnSickAgain = async () => {
        await removeSick();
        for (const { reg, kind } of sickRegs) await rewrite(reg, await sickCredential(reg, kind));
        await waitFor(`the sick clusters' ${expected} imports to report their reason again`, () =>
          sickImports().every((st) => st.ready === 'False' && EXPECTED_REASON[sickKind.get(st.cluster)!].includes(st.reason)), SICK_DEADLINE_S * 1000, 100);
      };
      const heal = async () => {
        await removeSick();
        for (const { reg } of sickRegs) await rewrite(reg, reg.cred);
        await waitUntilIdle(ctrl, 'the sick clusters to be healthy again and the controller idle', 300_000, 100, () => sickImports().every((st) => st.ready === 'True'));
      };

      // Rounds alternate, all healthy then with sick clusters, Q times: a machine that runs slower
      // for a while (a neighbour on the same host) then slows both conditions, not one.
      const worker = await startLiveWorker();
      watchers.push(worker);
      const rounds = { healthy: [] as LiveSamples[], sick: [] as LiveSamples[] };
      let allReported = false;
      await phase('live rounds, alternating', async () => {
        // The baseline is the steady state: the controller has finished converging the background imports.
        await waitUntilIdle(ctrl, 'the controller to be idle before the all-healthy rounds', 120_000, 100);
        for (let q = 1; q <= LIVE_ROUNDS; q++) {
          if (q > 1) await heal();
          rounds.healthy.push(await worker.round(`healthy${q}`));
          if (q === 1) {
            // The first sick round starts as the clusters turn sick.
            const { reasons } = await turnSickFirst();
            rounds.sick.push(await worker.round(`sick${q}`));
            allReported = await reasons;
          } else {
            await turnSickAgain();
            rounds.sick.push(await worker.round(`sick${q}`));
          }
        }
      });
      const healthyRounds = liveResult(rounds.healthy);
      const sickRounds = liveResult(rounds.sick);
      const byKind = Object.fromEntries(kinds.map((k) => {
        const ms = [...reported.values()].filter((r) => r.kind === k).map((r) => r.ms);
        const reasonsSeen = [...new Set([...reported.values()].filter((r) => r.kind === k).map((r) => r.reason))];
        return [k, { imports: sickRegs.filter((s) => s.kind === k).length * M, reported: ms.length, p50Ms: pct(ms, 50), maxMs: ms.length > 0 ? Math.max(...ms) : NaN, reasons: reasonsSeen }];
      }));
      if (!allReported) {
        const missing = [...lastReason.entries()].filter(([name]) => !reported.has(name)).slice(0, 5);
        log(`not every sick import reported its reason within ${SICK_DEADLINE_S} s; e.g. ${missing.map(([n, r]) => `${n}: ${r}`).join(', ')}`);
      }
      sick = {
        clusters: n,
        sickClusters: sickCount,
        healthy: healthyRounds,
        sick: sickRounds,
        p99Ratio: Object.fromEntries(LIVE_OPS.map((k) => [k, sickRounds[k].p99 / healthyRounds[k].p99])),
        reasons: { deadlineS: SICK_DEADLINE_S, allReported, byKind },
      };

      if (SOAK_MIN > 0) {
        soak = await phase('soak', async () => {
          const tokenRequestsToSick = async () => (await ctrl.metrics(['mcsa_token_requests_total'])).split('\n').filter((l) => l.startsWith('mcsa_token_requests_total{') && [...sickKind.keys()].some((s) => l.includes(`cluster="${s}"`))).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
          const req0 = await tokenRequestsToSick();
          const hits = () => endpoints.reduce((sum, e) => sum + e.hits(), 0);
          const hits0 = hits();
          const samples: Array<{ min: number; rssMiB: number }> = [];
          // Once a minute, as Prometheus would scrape it, what the RSS is made of: V8's heap
          // (committed and used) and memory outside it (external: buffers, strings held outside
          // the heap). An RSS step with the heap's committed size says V8 grew; one without says
          // native memory (TLS, HTTP/2 sessions, malloc) did.
          const heap: Array<{ min: number; rssMiB: number; anonMiB: number; heapTotalMiB: number; heapUsedMiB: number; externalMiB: number }> = [];
          const scrapeHeap = async (sample: { min: number; rssMiB: number }) => {
            const anonMiB = rssMiB(pid, 'RssAnon');
            const text = await ctrl.metrics();
            const mib = (name: string) => metricSum(text, name) / 1024 / 1024;
            heap.push({ ...sample, anonMiB, heapTotalMiB: mib('nodejs_heap_size_total_bytes'), heapUsedMiB: mib('nodejs_heap_size_used_bytes'), externalMiB: mib('nodejs_external_memory_bytes') });
          };
          const t0 = performance.now();
          const end = t0 + SOAK_MIN * 60_000;
          for (let next = t0, i = 0; next <= end; next += SOAK_SAMPLE_MS, i++) {
            const wait = next - performance.now();
            if (wait > 0) await sleep(wait);
            const sample = { min: (performance.now() - t0) / 60_000, rssMiB: rssMiB(pid, 'VmRSS') };
            samples.push(sample);
            if (i % Math.round(60_000 / SOAK_SAMPLE_MS) === 0) await scrapeHeap(sample);
          }
          const req1 = await tokenRequestsToSick();
          const hits1 = hits();
          const window = Math.min(3, SOAK_MIN / 3);
          const first = median(samples.filter((s) => s.min <= window).map((s) => s.rssMiB));
          const last = median(samples.filter((s) => s.min >= SOAK_MIN - window).map((s) => s.rssMiB));
          const r = {
            minutes: SOAK_MIN,
            samples,
            firstMiB: samples[0]!.rssMiB,
            lastMiB: samples.at(-1)!.rssMiB,
            maxMiB: Math.max(...samples.map((s) => s.rssMiB)),
            slopeMiBPerMin: slope(samples.map((s) => s.min), samples.map((s) => s.rssMiB)),
            windowMin: window,
            firstWindowMedianMiB: first,
            lastWindowMedianMiB: last,
            growthPercent: (100 * (last - first)) / first,
            flat: last <= first * (1 + TARGETS.flatPercent / 100),
            tokenRequestsToSickPerMin: (req1 - req0) / SOAK_MIN,
            // Connections accepted by the hanging endpoints plus requests answered by the failing ones: how often the controller retries them.
            sickEndpointHitsPerMin: (hits1 - hits0) / SOAK_MIN,
            sickEndpoints: endpoints.length,
            heap,
          };
          log(`soak, once a minute: ${heap.map((h) => `${h.min.toFixed(1)} min RSS ${h.rssMiB.toFixed(0)} (anon ${h.anonMiB.toFixed(0)}) heap ${h.heapTotalMiB.toFixed(0)}/${h.heapUsedMiB.toFixed(0)} ext ${h.externalMiB.toFixed(0)}`).join('; ')} MiB`);
          log(`soak: RSS first ${r.firstMiB.toFixed(1)}, last ${r.lastMiB.toFixed(1)}, max ${r.maxMiB.toFixed(1)} MiB; slope ${r.slopeMiBPerMin.toFixed(2)} MiB/min`);
          return r;
        });
      }
    }
    await controller?.stop();
    controller = undefined;

    // Results.
    const refPoint = sweep.find((p) => p.clusters === refN);
    const rssSlope = control && refPoint ? (control.controller.hwmMiB - refPoint.controller.hwmMiB) / (control.clusters - refPoint.clusters) : NaN;
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    console.log(`\nFleet sweep: ${K} source API servers, ${M} imports per cluster, concurrency ${C}; ${os.cpus().length} CPUs, load at start ${loadStart.map((l) => l.toFixed(2)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
    console.log('| N clusters | imports | time to all Ready: controller / bare | ratio (target ≤ 1.5× at N = 300) | peak RSS: controller / bare | watches (per cluster; target ≤ 2) | TokenRequests per import: controller / bare | CPU per import: controller / bare | ratio |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const p of sweep) {
      const c = p.controller;
      const b = p.bare;
      console.log(`| ${p.clusters} | ${p.imports} | ${fmt(c.ms / 1000)} s / ${fmt(b.ms / 1000)} s | ${ratio(c.ms, b.ms)} | ${fmt(c.hwmMiB, 0)} / ${fmt(b.hwmMiB, 0)} MiB | ${c.watches} (${fmt(c.watches / p.clusters, 2)}) | ${fmt(c.tokenRequestsPerImport, 2)} / ${fmt(b.tokenRequestsPerImport, 2)} | ${fmt(c.cpuMsPerImport, 2)} / ${fmt(b.cpuMsPerImport, 2)} ms | ${ratio(c.cpuMsPerImport, b.cpuMsPerImport)} |`);
    }
    if (control && refPoint) {
      console.log(`\ncontrol point: ${control.imports} imports over ${control.clusters} clusters: controller ${fmt(control.controller.ms / 1000)} s, peak RSS ${fmt(control.controller.hwmMiB, 0)} MiB, ${control.controller.watches} watches`);
      console.log(`RSS slope per registered cluster (the same ${control.imports} imports on ${refPoint.clusters} and on ${control.clusters} clusters: ${fmt(refPoint.controller.hwmMiB, 0)} → ${fmt(control.controller.hwmMiB, 0)} MiB): ${fmt(rssSlope, 3)} MiB per cluster (target ≤ ${TARGETS.slopeMiBPerCluster})`);
    }
    console.log(`(bare client: a Node process of its own, bundled and run with the same Node flags as the controller (${controllerNodeFlags.join(' ')}); its RSS before the work, once loaded: ` + sweep.map((p) => `${fmt(p.bare.rssBeforeMiB, 0)}`).join(' / ') + ' MiB)');
    if (sick) {
      const s = sick as { clusters: number; sickClusters: number; healthy: LiveResult; sick: LiveResult; p99Ratio: Record<(typeof LIVE_OPS)[number], number>; reasons: { allReported: boolean; byKind: Record<string, { imports: number; reported: number; p50Ms: number; maxMs: number; reasons: string[] }> } };
      console.log(`\nSick phase at N = ${s.clusters}: ${s.sickClusters} sick clusters (a third each: hang, 500 after 5 s, 401); healthy-cluster imports, ${LIVE_ROUNDS} rounds per condition of ${LIVE} imports at ${LIVE_RATE}/s; p50 and p99 over all ${LIVE_ROUNDS * LIVE} samples of a condition, then each round's own p99\n`);
      console.log('| healthy-cluster latency | all healthy p50 / p99 (rounds) | with sick clusters p50 / p99 (rounds; the first while they turn sick) | p99 ratio (target ≤ 1.3×) |\n|---|---|---|---|');
      const cell = (r: LiveResult[(typeof LIVE_OPS)[number]]) => `${fmt(r.p50)} / ${fmt(r.p99)} ms (${r.roundP99.map((x) => fmt(x)).join(', ')})`;
      const label = { created: 'created → Ready', rotated: 'rotate → new token', deleted: 'delete → Secret gone' };
      for (const k of LIVE_OPS) console.log(`| ${label[k]} | ${cell(s.healthy[k])} | ${cell(s.sick[k])} | ${fmt(s.p99Ratio[k], 2)}× |`);
      console.log(`\nsick clusters' imports reporting their reason (deadline ${SICK_DEADLINE_S} s): ${Object.entries(s.reasons.byKind).map(([k, v]) => `${k}: ${v.reported}/${v.imports} (${v.reasons.join(', ') || 'none'}) p50 ${fmt(v.p50Ms / 1000, 1)} s, last ${fmt(v.maxMs / 1000, 1)} s`).join('; ')}`);
    }
    if (soak) {
      const k = soak as { sickEndpointHitsPerMin: number; sickEndpoints: number; minutes: number; firstMiB: number; lastMiB: number; maxMiB: number; slopeMiBPerMin: number; windowMin: number; firstWindowMedianMiB: number; lastWindowMedianMiB: number; growthPercent: number; flat: boolean; tokenRequestsToSickPerMin: number };
      console.log(`\nsoak, ${k.minutes} min with the sick clusters failing: controller RSS first ${fmt(k.firstMiB)}, last ${fmt(k.lastMiB)}, max ${fmt(k.maxMiB)} MiB, slope ${fmt(k.slopeMiBPerMin, 3)} MiB/min; median of the last ${fmt(k.windowMin)} min vs the first ${fmt(k.windowMin)} min: ${fmt(k.lastWindowMedianMiB)} vs ${fmt(k.firstWindowMedianMiB)} MiB (${fmt(k.growthPercent)} %): ${k.flat ? 'flat' : 'GROWING'} (flat = within ${TARGETS.flatPercent} %); TokenRequests to the sick clusters: ${fmt(k.tokenRequestsToSickPerMin)} per minute; connections to the hanging and requests to the failing endpoints: ${fmt(k.sickEndpointHitsPerMin)} per minute over ${k.sickEndpoints} endpoints`);
    }
    const total = (performance.now() - tStart) / 1000;
    console.log(`\nelapsed: ${phases.map(([p, s]) => `${p} ${s.toFixed(0)} s`).join(', ')}; total ${(total / 60).toFixed(1)} min`);
    const results = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, loadStart, loadEnd: os.loadavg(), node: process.version },
      flags: { sources: K, clusters: SWEEP, importsPerCluster: M, concurrency: C, sickAt: SICK_AT, liveImports: LIVE, liveRate: LIVE_RATE, liveRounds: LIVE_ROUNDS, sickDeadlineS: SICK_DEADLINE_S, soakMinutes: SOAK_MIN },
      targets: TARGETS,
      sweep,
      control,
      rssSlopeMiBPerCluster: rssSlope,
      sick,
      soak,
      phases: Object.fromEntries(phases),
      totalSeconds: total,
    };
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(results, null, 2));
    log(`results: ${OUT}`);
    if (WRITE_PLOT) {
      const file = path.join(ROOT, 'docs/img/fleet.svg');
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, plot(sweep, results.date));
      log(`plot: ${file}`);
    }
  } finally {
    for (const w of watchers) w.stop();
    await controller?.stop();
    await Promise.allSettled(endpoints.map((e) => e.stop()));
    rmSync(dir, { recursive: true, force: true });
    await set.stop();
  }
}

/** Two small line charts (time to all Ready, peak RSS) against N, controller and bare client. */
function plot(sweep: SweepPoint[], date: string): string {
  const W = 360;
  const H = 240;
  const m = { l: 56, r: 16, t: 34, b: 44 };
  const maxN = Math.max(...sweep.map((p) => p.clusters));
  const panel = (x0: number, title: string, unit: string, get: (p: SweepPoint, side: 'controller' | 'bare') => number) => {
    const maxY = Math.max(...sweep.flatMap((p) => [get(p, 'controller'), get(p, 'bare')])) * 1.1 || 1;
    const px = (n: number) => x0 + m.l + ((W - m.l - m.r) * n) / maxN;
    const py = (y: number) => H - m.b - ((H - m.t - m.b) * y) / maxY;
    const line = (side: 'controller' | 'bare', color: string, dash: string) =>
      `<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${sweep.map((p) => `${px(p.clusters).toFixed(1)},${py(get(p, side)).toFixed(1)}`).join(' ')}"/>` +
      sweep.map((p) => `<circle cx="${px(p.clusters).toFixed(1)}" cy="${py(get(p, side)).toFixed(1)}" r="3" fill="${color}"/>`).join('');
    const ticksY = [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const y = maxY * f;
      return `<line x1="${x0 + m.l}" x2="${x0 + W - m.r}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#ddd"/><text x="${x0 + m.l - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${y >= 10 || y === 0 ? y.toFixed(0) : y.toFixed(1)}</text>`;
    });
    const ticksX = sweep.map((p) => `<text x="${px(p.clusters).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${p.clusters}</text>`);
    return [
      `<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`,
      ...ticksY,
      ...ticksX,
      `<line x1="${x0 + m.l}" x2="${x0 + W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
      `<line x1="${x0 + m.l}" x2="${x0 + m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`,
      `<text x="${x0 + W / 2}" y="${H - 10}" text-anchor="middle">registered source clusters (N)</text>`,
      `<text x="${x0 + 14}" y="${H / 2}" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${H / 2})">${unit}</text>`,
      line('bare', '#888', '6 4'),
      line('controller', '#1f77b4', ''),
    ].join('\n');
  };
  const width = 2 * W;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 24}" viewBox="0 0 ${width} ${H + 24}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel(0, 'time to all imports Ready', 'seconds', (p, s) => p[s].ms / 1000),
    panel(W, 'peak RSS (VmHWM)', 'MiB', (p, s) => p[s].hwmMiB),
    `<line x1="${m.l}" x2="${m.l + 24}" y1="${H + 12}" y2="${H + 12}" stroke="#1f77b4" stroke-width="2"/><text x="${m.l + 30}" y="${H + 16}">controller</text>`,
    `<line x1="${m.l + 110}" x2="${m.l + 134}" y1="${H + 12}" y2="${H + 12}" stroke="#888" stroke-width="2" stroke-dasharray="6 4"/><text x="${m.l + 140}" y="${H + 16}">bare client (same calls, own process)</text>`,
    `<text x="${width - m.r}" y="${H + 16}" text-anchor="end" fill="#666">npm run bench:fleet, ${date.slice(0, 10)}, ${sweep[0] ? sweep[0].imports / sweep[0].clusters : ''} imports per cluster</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/** `--plot-from <results.json>`: only (re)write docs/img/fleet.svg from an earlier run's results. */
async function plotOnly(file: string): Promise<void> {
  const results = JSON.parse(readFileSync(file, 'utf8')) as { sweep: SweepPoint[]; date: string };
  const out = path.join(ROOT, 'docs/img/fleet.svg');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, plot(results.sweep, results.date));
  log(`plot: ${out}`);
}

const plotFrom = arg('plot-from');
(plotFrom ? plotOnly(plotFrom) : main()).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
