/**
 * Controller benchmark (`npm run bench:controller`): N imports (default 1,000) over 2 source
 * clusters, the controller (run as its Deployment and ServiceAccount would) against a bare client
 * doing the same API calls — TokenRequest in the source, Secret create and status patch in the
 * target — at the same concurrency, in the same run on the same clusters.
 *
 * Latency: L imports one after another, after W unmeasured warm-up imports on each side (the
 * controller is a fresh process); controller: import created → Ready=True seen by a watch;
 * bare: the three calls. Throughput, in R alternating rounds: bare, the same N call sequences
 * with C workers; controller, N imports created while no controller runs, then a fresh controller
 * converges them all (from the moment it leads to the last Ready); the median round ratio counts.
 * Also: the controller's peak RSS and its open watch connections.
 * The peer: a minimal controller-runtime controller doing the same per-import work (test/bench/go-peer,
 * built with Go by test/tools/build.sh into the cache), in each round after the controller, measured
 * the same way: N imports created while nothing runs, a fresh peer process converges them (from the
 * moment it leads to the last Ready), CPU (utime + stime) and peak RSS (VmHWM) of its process.
 * Targets (SPEC §12): latency p50 ≤ 1.5× and p99 ≤ 3× the bare client's; throughput ≥ 70 % of the
 * bare client's and ≥ 100 % of the peer's (median of round ratios), CPU per import and peak RSS each
 * ≤ 1.5× the peer's; watch connections independent of N; RSS ≤ 150 MiB at 1,000 imports (≤ 400 MiB at 10,000).
 *
 * Flags: --imports N (1000), --concurrency C (10), --latency-samples L (50), --warmup W (10), --rounds R (3),
 * --skip-baseline, --skip-peer, --node-flags "<flags>" (instead of the Deployment's Node/V8 flags, to compare settings).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, credentialFromSecretData, mintFingerprint, SecretAnnotations } from '../../src/secret.js';
import { rfc3339 } from '../../src/controller/conditions.js';
import { ClusterSet } from '../harness/clusters.js';
import { adminKubeConfig } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { serviceAccountKubeconfig } from '../harness/deployment.js';
import { kubemcsa } from '../integration/cli-support.js';
import { CONTROLLER_SA, createPolicy, installControllerPrerequisites, startController, type RunningController } from '../integration/controller-support.js';
import { tokenRequestFor } from '../../src/controller/decide.js';
import { parseGrants, type Grant } from '../../src/consent/grants.js';
import { reuseConnections } from '../../src/kube/reuse-connections.js';
import { buildPeer, childPid, startPeer, type PeerPlan, type RunningPeer } from './peer.js';
import { BareClient, pool, type BareRegistration } from './bare-client.js';
import { cpuMs, rssMiB } from './proc.js';
import { buildProject, createBulk, waitUntilIdle } from './common.js';
import { importBody as tenantImport, median, metricSum, pct, readyWatcher } from './measure.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const N = flag('imports', 1000);
const C = flag('concurrency', 10);
const L = flag('latency-samples', 50);
const W = flag('warmup', 10);
const R = flag('rounds', 3);
const skipBaseline = process.argv.includes('--skip-baseline');
const skipPeer = process.argv.includes('--skip-peer');
const nodeFlagsAt = process.argv.indexOf('--node-flags');
const nodeFlags = nodeFlagsAt > 0 ? (process.argv[nodeFlagsAt + 1] ?? '').split(/\s+/).filter(Boolean) : undefined;
const SOURCES = ['cluster2', 'cluster3'];
const REMOTE_NS = 'bench';
const REMOTE_SA = 'bench';

const log = (m: string) => console.log(`[bench] ${m}`);
const REMOTE = { namespace: REMOTE_NS, name: REMOTE_SA };
const importBody = (ns: string, name: string, i: number) => tenantImport(ns, name, SOURCES[i % SOURCES.length]!, REMOTE);
const createImportsBulk = (kubeconfigPath: string, ns: string, names: string[]) => createBulk(kubeconfigPath, names.map((n, i) => importBody(ns, n, i)));

/** A source's registration as the bench reads it: its credentials, the importer (cluster1) and the grant it gave cluster1. */
type Registration = BareRegistration;

/**
 * The TokenRequest the controller makes for the bench's imports of `cluster` (its own decision,
 * tokenRequestFor: a bound TokenRequest under the grant) and the fingerprint their Secrets carry.
 */
function benchTokenPlan(cluster: string, r: Registration) {
  const spec = { clusterName: cluster, namespace: REMOTE_NS, name: REMOTE_SA };
  return tokenRequestFor(mintFingerprint({ spec, server: r.server, caPem: r.caPem }), { expirationSeconds: 3600, audiences: [] }, r.grant && { importer: r.importer, grant: r.grant });
}

/** What the peer is told per source: the same plan, as test/bench/go-peer reads it. */
function peerPlan(cluster: string, r: Registration): PeerPlan {
  const { request, fingerprint } = benchTokenPlan(cluster, r);
  return {
    clusterName: cluster, namespace: REMOTE_NS, name: REMOTE_SA, expirationSeconds: request.expirationSeconds, audiences: request.audiences, fingerprint,
    ...(request.boundSecret ? { boundSecret: request.boundSecret } : {}), ...(request.boundSecretUid ? { boundSecretUid: request.boundSecretUid } : {}),
  };
}

/**
 * The peer did the controller's work, not less: one of its Secrets is what buildImportSecret makes
 * of the same token and times (keys, labels, annotations, owner reference), and its import's
 * status is the controller's Ready. Names the fields that differ, never a value.
 */
async function checkPeerWork(core: CoreV1Api, custom: CustomObjectsApi, ns: string, name: string, registrations: Map<string, Registration>): Promise<void> {
  const imp = (await custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, name })) as {
    metadata: { uid: string; generation: number };
    spec: { clusterName: string };
    status?: { observedGeneration?: number; expirationTimestamp?: string; secrets?: { name: string }[]; conditions?: { type: string; status: string; reason: string; observedGeneration?: number }[] };
  };
  const secret = await core.readNamespacedSecret({ namespace: ns, name: secretNameForImport(name) });
  const a = secret.metadata?.annotations ?? {};
  const cluster = imp.spec.clusterName;
  const reg = registrations.get(cluster)!;
  const expiration = new Date(a[SecretAnnotations.expiration] ?? NaN);
  const want = buildImportSecret({
    importName: name, importNamespace: ns, importUid: imp.metadata.uid,
    credential: { token: credentialFromSecretData(secret.data)?.token ?? '', server: reg.server, caPem: reg.caPem, namespace: REMOTE_NS },
    issued: new Date(a[SecretAnnotations.issued] ?? NaN), expiration, remoteUid: a[SecretAnnotations.remoteUid] ?? '', fingerprint: benchTokenPlan(cluster, reg).fingerprint, rotation: '',
  });
  const plain = (o: unknown) => JSON.parse(JSON.stringify(o ?? null)) as unknown;
  const differs = (what: string, got: unknown, expected: unknown) => (isDeepStrictEqual(plain(got), plain(expected)) ? [] : [what]);
  const ready = imp.status?.conditions?.find((c) => c.type === 'Ready');
  const wrong = [
    ...Object.keys(want.data!).filter((k) => secret.data?.[k] !== want.data![k]).map((k) => `data.${k}`),
    ...differs('type', secret.type, want.type),
    ...differs('labels', secret.metadata?.labels, want.metadata!.labels),
    ...differs('annotations', a, want.metadata!.annotations),
    ...differs('ownerReferences', secret.metadata?.ownerReferences, want.metadata!.ownerReferences),
    ...(a[SecretAnnotations.remoteUid] ? [] : ['the remote ServiceAccount UID annotation (empty)']),
    ...differs('status Ready condition', ready && [ready.status, ready.reason, ready.observedGeneration], ['True', 'TokenIssued', imp.metadata.generation]),
    ...differs('status.observedGeneration', imp.status?.observedGeneration, imp.metadata.generation),
    ...differs('status.secrets', imp.status?.secrets, [{ name: secretNameForImport(name) }]),
    ...differs('status.expirationTimestamp', imp.status?.expirationTimestamp, rfc3339(expiration)),
  ];
  if (wrong.length > 0) throw new Error(`the peer's Secret or status of import ${ns}/${name} differs from the controller's: ${wrong.join(', ')}`);
}

async function main(): Promise<void> {
  log(`N=${N} imports over ${SOURCES.length} source clusters, concurrency ${C}, ${L} latency samples after ${W} warm-up imports each${nodeFlags ? `, controller Node flags: ${nodeFlags.join(' ') || '(none)'}` : ''}`);
  // Measure what the image runs: the compiled controller.
  log('npm run build');
  buildProject();
  const peerBinary = skipPeer ? undefined : buildPeer();
  const set = await ClusterSet.start({ count: 3, log });
  process.env.MCSA_TEST_CLUSTERS = set.statePath;
  const { kubeconfigPath } = set.info;
  let controller: RunningController | undefined;
  let peer: RunningPeer | undefined;
  try {
    await installControllerPrerequisites('cluster1');
    const grants = new Map<string, Grant | undefined>();
    for (const source of SOURCES) {
      const boot = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', source]);
      if (boot.code !== 0) throw new Error(`bootstrap ${source} failed: ${boot.stderr}`);
      const kc = adminKubeConfig(source);
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: REMOTE_NS } } });
      await core.createNamespacedServiceAccount({ namespace: REMOTE_NS, body: { metadata: { name: REMOTE_SA } } });
      const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createNamespacedRole({ namespace: REMOTE_NS, body: { metadata: { name: 'bench' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] } });
      await rbac.createNamespacedRoleBinding({ namespace: REMOTE_NS, body: {
        metadata: { name: 'bench' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'bench' },
        subjects: [{ kind: 'ServiceAccount', name: REMOTE_SA, namespace: REMOTE_NS }],
      } });
      const granted = await kubemcsa(['grant', REMOTE_SA, '-n', REMOTE_NS, '--target-name', 'cluster1', '--source-context', source]);
      if (granted.code !== 0) throw new Error(`grant in ${source} failed: ${granted.stderr}`);
      const importer = await core.readNamespacedServiceAccount({ namespace: INSTALL_NAMESPACE, name: 'cluster1' });
      grants.set(source, parseGrants(importer.metadata?.annotations).find((g) => g.namespace === REMOTE_NS && g.serviceAccount === REMOTE_SA));
    }
    // cluster1's admin lets every bench namespace import the bench ServiceAccount of REMOTE_NS.
    const benchNamespaces = ['bench-bare-lat', 'bench-ctrl-lat', ...Array.from({ length: R }, (_, i) => [`bench-bare-${i + 1}`, `bench-ctrl-${i + 1}`, `bench-peer-${i + 1}`]).flat()];
    await createPolicy('cluster1', 'bench', { mappings: benchNamespaces.map((namespace) => ({ namespace, remoteNamespace: REMOTE_NS, serviceAccounts: [REMOTE_SA] })) });
    const admin1 = adminKubeConfig('cluster1');
    const core1 = admin1.makeApiClient(CoreV1Api);
    const custom1 = admin1.makeApiClient(CustomObjectsApi);
    for (const ns of ['bench-bare-lat', 'bench-ctrl-lat']) await core1.createNamespace({ body: { metadata: { name: ns } } });
    const uidOf = async (ns: string) => new Map(((await custom1.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL })) as { items: { metadata: { name: string; uid: string } }[] }).items.map((i) => [i.metadata.name, i.metadata.uid]));
    const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

    // The bare client and the peer authenticate as the controller would: its ServiceAccount locally, the registrations remotely.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-bench-'));
    const localKc = reuseConnections(new KubeConfig());
    const saKubeconfig = await serviceAccountKubeconfig('cluster1', INSTALL_NAMESPACE, CONTROLLER_SA, path.join(dir, 'kubeconfig'));
    localKc.loadFromFile(saKubeconfig);
    const registrations = new Map<string, Registration>();
    for (const s of SOURCES) {
      const secret = await core1.readNamespacedSecret({ namespace: INSTALL_NAMESPACE, name: secretNameForImport(s) });
      const grant = grants.get(s);
      registrations.set(s, { ...credentialFromSecretData(secret.data)!, importer: 'cluster1', ...(grant ? { grant } : {}) });
    }

    const deleteNamespace = async (name: string) => {
      await core1.deleteNamespace({ name });
      await waitFor(`namespace ${name} to be deleted`, async () => !(await core1.listNamespace()).items.some((n) => n.metadata?.name === name), 300_000, 500);
    };

    const bare = skipBaseline ? undefined : new BareClient(localKc, registrations, REMOTE);
    const bareLat: number[] = [];

    // Throughput, in alternating rounds (the machine's load drifts): the bare client converges N
    // imports; then N imports wait while no controller runs, and a fresh controller converges them;
    // then the same for a fresh peer. Each round's namespace is deleted before the next phase, so
    // no phase inherits work.
    const bareTput: number[] = [];
    const ctrlTput: number[] = [];
    const bareCpu: number[] = [];
    const ctrlCpu: number[] = [];
    const ratios: number[] = [];
    const ctrlHwm: number[] = [];
    const peerTput: number[] = [];
    const peerCpu: number[] = [];
    const peerHwm: number[] = [];
    const peerRatios: number[] = [];
    let peakRss = 0;
    let peakSplit = '';
    let watches: number | undefined;
    let minted = 0;
    let peerMinted = 0;
    const peerPlans = [...registrations].map(([cluster, reg]) => peerPlan(cluster, reg));
    for (let r = 1; r <= R; r++) {
      if (bare) {
        const ns = `bench-bare-${r}`;
        await core1.createNamespace({ body: { metadata: { name: ns } } });
        const bulk = names('imp', N);
        await createImportsBulk(kubeconfigPath, ns, bulk);
        const uids = await uidOf(ns);
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        await pool(bulk.map((n, i) => ({ n, i })), C, ({ n, i }) => bare.converge(ns, n, uids.get(n)!, SOURCES[i % SOURCES.length]!));
        bareTput.push(N / ((performance.now() - t0) / 1000));
        const cpu = process.cpuUsage(cpu0);
        bareCpu.push((cpu.user + cpu.system) / 1000 / N);
        await deleteNamespace(ns);
      }
      const ns = `bench-ctrl-${r}`;
      await core1.createNamespace({ body: { metadata: { name: ns } } });
      await createImportsBulk(kubeconfigPath, ns, names('imp', N));
      controller = await startController({ extra: [`--concurrency=${C}`], compiled: true, nodeFlags });
      const pid = childPid(controller.process.pid, 'streams/controller/main');
      const sampler = setInterval(() => {
        if (!pid) return;
        const rss = rssMiB(pid, 'VmRSS');
        if (rss <= peakRss) return;
        peakRss = rss;
        // What the peak is made of: anonymous memory (V8 heap, malloc) and mapped files (node's own code).
        peakSplit = `anonymous ${rssMiB(pid, 'RssAnon').toFixed(0)} MiB, files ${rssMiB(pid, 'RssFile').toFixed(0)} MiB`;
      }, 200);
      await waitFor('the controller to lead', () => /became leader/.test(controller!.log()), 60_000, 50);
      const leaderLine = controller.log().split('\n').find((l) => l.includes('became leader'))!;
      const tStart = Date.parse((JSON.parse(leaderLine) as { timestamp: string }).timestamp);
      // Ready as the controller's own cache sees it (its mcsa_imports gauge), so no extra watch
      // loads the API server: the N imports plus the registrations.
      let lastProgress = 0;
      await waitFor(`all ${N} imports Ready`, async () => {
        const ready = (await controller!.metric('mcsa_imports', 'ready="True",reason="TokenIssued"')) ?? 0;
        if (ready - lastProgress >= 1000) {
          lastProgress = ready;
          log(`  ${ready}/${N + SOURCES.length} Ready`);
        }
        return ready >= N + SOURCES.length;
      }, 600_000, 100);
      ctrlTput.push(N / ((Date.now() - tStart) / 1000));
      if (pid) ctrlCpu.push(cpuMs(pid) / N);
      clearInterval(sampler);
      if (pid) ctrlHwm.push(rssMiB(pid, 'VmHWM'));
      watches = await controller.metric('mcsa_watch_connections');
      minted += metricSum(await controller.metrics(), 'mcsa_token_refreshes_total');
      await controller.stop();
      controller = undefined;
      await deleteNamespace(ns);
      const ratio = bare ? ctrlTput.at(-1)! / bareTput.at(-1)! : NaN;
      ratios.push(ratio);
      log(`round ${r}/${R}: bare ${bare ? bareTput.at(-1)!.toFixed(1) : '-'} imports/s, controller ${ctrlTput.at(-1)!.toFixed(1)} imports/s, ratio ${(100 * ratio).toFixed(0)} %; CPU per import: bare client ${bare ? bareCpu.at(-1)!.toFixed(2) : '-'} ms, controller ${ctrlCpu.at(-1)?.toFixed(2) ?? '-'} ms (from its start)`);
      if (peerBinary) {
        const peerNs = `bench-peer-${r}`;
        await core1.createNamespace({ body: { metadata: { name: peerNs } } });
        await createImportsBulk(kubeconfigPath, peerNs, names('imp', N));
        peer = await startPeer(peerBinary, { kubeconfig: saKubeconfig, plans: peerPlans, concurrency: C, dir });
        // Ready as the peer reported it (its peer_imports_ready gauge, polled like the controller's).
        await waitFor(`all ${N} imports Ready (peer)`, async () => ((await peer!.metric('peer_imports_ready')) ?? 0) >= N, 600_000, 100);
        peerTput.push(N / ((Date.now() - peer.ledAt) / 1000));
        peerCpu.push(cpuMs(peer.pid) / N);
        peerHwm.push(rssMiB(peer.pid, 'VmHWM'));
        peerMinted += (await peer.metric('peer_tokens_minted_total')) ?? 0;
        await peer.stop();
        peer = undefined;
        await checkPeerWork(core1, custom1, peerNs, 'imp-0', registrations);
        await deleteNamespace(peerNs);
        peerRatios.push(ctrlTput.at(-1)! / peerTput.at(-1)!);
        log(`round ${r}/${R}: peer ${peerTput.at(-1)!.toFixed(1)} imports/s (controller/peer ${(100 * peerRatios.at(-1)!).toFixed(0)} %, target ≥ 100 %); CPU per import: peer ${peerCpu.at(-1)!.toFixed(2)} ms (controller/peer ${(ctrlCpu.at(-1)! / peerCpu.at(-1)!).toFixed(2)}×, target ≤ 1.5×); peak RSS (VmHWM): peer ${peerHwm.at(-1)!.toFixed(0)} MiB, controller ${ctrlHwm.at(-1)?.toFixed(0) ?? '-'} MiB (controller/peer ${(ctrlHwm.at(-1)! / peerHwm.at(-1)!).toFixed(2)}×, target ≤ 1.5×)`);
      }
    }

    // Latency, one import at a time, interleaved in blocks so that both sides meet the same load
    // on this shared machine: a bare block (the controller frozen with SIGSTOP, so it neither
    // competes nor reacts until the bare client is done; it then finds those imports converged),
    // then a controller block (import created → Ready=True seen by a watch). The first W imports
    // of each side warm up (the controller is a fresh process) and are not counted.
    controller = await startController({ extra: [`--concurrency=${C}`], compiled: true, nodeFlags });
    const latPid = childPid(controller.process.pid, 'streams/controller/main');
    if (bare && !latPid) throw new Error('cannot find the controller process to pause it for the bare latency blocks');
    const latWatcher = readyWatcher(admin1, 'bench-ctrl-lat');
    await waitFor('the latency watch to list', () => latWatcher.listed, 10_000, 20);
    await waitFor('the controller to lead', () => /became leader/.test(controller!.log()), 60_000, 50);
    const ctrlLat: number[] = [];
    const BLOCKS = 5;
    const blockSize = Math.ceil(L / BLOCKS);
    const done = { bare: 0, ctrl: 0 };
    /** The controller has seen every import so far (all Ready) and has nothing queued or running. */
    const quiet = () =>
      waitUntilIdle(controller!, 'the controller to settle', 60_000, 50, async () => ((await controller!.metric('mcsa_imports', 'ready="True",reason="TokenIssued"')) ?? 0) >= SOURCES.length + done.bare + done.ctrl);
    const bareBlock = async (n: number, measured: boolean) => {
      if (!bare) return;
      const ns = 'bench-bare-lat';
      const batch = names(`lat-${done.bare}`, n);
      process.kill(latPid!, 'SIGSTOP');
      try {
        await createImportsBulk(kubeconfigPath, ns, batch);
        const uids = await uidOf(ns);
        for (const [i, name] of batch.entries()) {
          const t0 = performance.now();
          await bare.converge(ns, name, uids.get(name)!, SOURCES[(done.bare + i) % SOURCES.length]!);
          if (measured) bareLat.push(performance.now() - t0);
        }
      } finally {
        process.kill(latPid!, 'SIGCONT');
      }
      done.bare += n;
      await quiet();
    };
    const ctrlBlock = async (n: number, measured: boolean) => {
      for (let i = 0; i < n; i++) {
        const name = `lat-${done.ctrl + i}`;
        await custom1.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: 'bench-ctrl-lat', plural: IMPORT_PLURAL, body: importBody('bench-ctrl-lat', name, done.ctrl + i) });
        const t0 = performance.now();
        await latWatcher.when(name);
        if (measured) ctrlLat.push(latWatcher.readyAt.get(name)! - t0);
      }
      done.ctrl += n;
      await quiet();
    };
    await bareBlock(W, false);
    await ctrlBlock(W, false);
    for (let b = 0; b < BLOCKS; b++) {
      const n = Math.min(blockSize, L - b * blockSize);
      if (n <= 0) break;
      await bareBlock(n, true);
      await ctrlBlock(n, true);
    }
    latWatcher.stop();
    if (bare) log(`bare latency: p50 ${pct(bareLat, 50).toFixed(1)} ms, p99 ${pct(bareLat, 99).toFixed(1)} ms (${bareLat.length} samples in ${BLOCKS} blocks)`);
    log(`controller latency: p50 ${pct(ctrlLat, 50).toFixed(1)} ms, p99 ${pct(ctrlLat, 99).toFixed(1)} ms (${ctrlLat.length} samples in ${BLOCKS} blocks)`);

    const rows: [string, string, string, string][] = [
      ['CPU per import, median (ms)', median(ctrlCpu).toFixed(2), bare ? median(bareCpu).toFixed(2) : '-', 'controller: whole process from its start (listing, watches, probes included)'],
      ['latency p50 (ms)', pct(ctrlLat, 50).toFixed(1), pct(bareLat, 50).toFixed(1), (pct(ctrlLat, 50) / pct(bareLat, 50)).toFixed(2) + '× (target ≤ 1.5×)'],
      ['latency p99 (ms)', pct(ctrlLat, 99).toFixed(1), pct(bareLat, 99).toFixed(1), (pct(ctrlLat, 99) / pct(bareLat, 99)).toFixed(2) + '× (target ≤ 3×)'],
      [`throughput, median of ${R} rounds (imports/s)`, median(ctrlTput).toFixed(1), bare ? median(bareTput).toFixed(1) : '-', `${(100 * median(ratios)).toFixed(0)} % median of round ratios [${ratios.map((x) => (100 * x).toFixed(0)).join(', ')}] (target ≥ 70 %)`],
    ];
    console.log('\n| metric | controller | bare client | ratio |\n|---|---|---|---|');
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
    if (peerBinary) {
      const ratioRow = (what: string, ctrl: number[], peerSide: number[], digits: number, target: string): string =>
        `| ${what} | ${median(ctrl).toFixed(digits)} | ${median(peerSide).toFixed(digits)} | ${(median(ctrl) / median(peerSide)).toFixed(2)}× (target ${target}) |`;
      console.log('\n| metric, median of rounds | controller | controller-runtime peer | controller/peer |\n|---|---|---|---|');
      console.log(`| throughput (imports/s) | ${median(ctrlTput).toFixed(1)} | ${median(peerTput).toFixed(1)} | ${(100 * median(peerRatios)).toFixed(0)} % median of round ratios [${peerRatios.map((x) => (100 * x).toFixed(0)).join(', ')}] (target ≥ 100 %) |`);
      console.log(ratioRow('CPU per import (ms, whole process from its start)', ctrlCpu, peerCpu, 2, '≤ 1.5×'));
      console.log(ratioRow('peak RSS (VmHWM, MiB)', ctrlHwm, peerHwm, 0, '≤ 1.5×'));
      console.log(`\ntokens minted by the peers: ${peerMinted} for ${R} × ${N} imports`);
    }
    console.log(`\ncontroller peak RSS: ${Math.max(peakRss, ...ctrlHwm).toFixed(0)} MiB (VmHWM, worst round; highest sample: ${peakSplit}) converging ${N} imports (+${SOURCES.length} registrations) (target ≤ ${N >= 10_000 ? 400 : 150} MiB)`);
    console.log(`controller watch connections: ${watches} (5 local: imports, Secrets, federated ConfigMaps, federated source records, policies; + 1 per source cluster; independent of N)`);
    console.log(`tokens minted by the controllers: ${minted} for ${R} × ${N} imports (each round's imports are new)`);
    rmSync(dir, { recursive: true, force: true });
  } finally {
    await controller?.stop();
    await peer?.stop();
    await set.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
