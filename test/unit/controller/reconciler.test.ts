// The reconciler's effects over scripted API calls (streams/controller/effects.ts is the seam):
// which calls one reconcile makes for each decision, what it writes, how API errors become
// conditions, read-your-writes through the shared cache, and that no token reaches the logs.
import { afterEach, describe, expect, it } from '@jest/globals';
import { ApiException, type CoreV1Event, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import { Subject } from 'rxjs';
import { Writable } from 'node:stream';
import type { ImportStatus } from '../../../src/api/import.js';
import type { TokenRequestPlan } from '../../../src/controller/decide.js';
import { grantObjectName } from '../../../src/consent/grants.js';
import { createLogger } from '../../../src/logger.js';
import { configMapNameForImport, secretNameForImport } from '../../../src/naming.js';
import { SecretAnnotations, buildImportSecret, mintFingerprint, secretDataHash } from '../../../src/secret.js';
import { buildFederatedConfigMap } from '../../../src/federation/imports.js';
import { FEDERATED_SOURCE_LABEL, IMPORT_LABEL } from '../../../src/constants.js';
import { SharedCache } from '../../../streams/cache.js';
import type { ImportEffects } from '../../../streams/controller/effects.js';
import { ControllerMetrics } from '../../../streams/controller/metrics.js';
import { projectConfigMap, projectFederatedRecord, projectImport, projectSecret, type CachedConfigMap, type CachedFederatedRecord, type CachedImport, type CachedSecret } from '../../../streams/controller/projections.js';
import type { ImportPolicy } from '../../../src/consent/policy.js';
import { Reconciler } from '../../../streams/controller/reconciler.js';

type IssuedToken = Awaited<ReturnType<ImportEffects['requestToken']>>;
type ClusterState = NonNullable<ReturnType<ConstructorParameters<typeof Reconciler>[0]['registry']['get']>>;
import type { RemoteServiceAccountView } from '../../../src/controller/decide.js';
import type { WatchEvent } from '../../../streams/watch.js';

const INSTALL_NS = 'multicluster-service-account';
const NOW = new Date('2026-06-01T12:00:00Z');
const SERVER = 'https://source.example:6443';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** A token shaped as the source's (unsigned: the controller reads claims, it does not verify). */
function jwt(iat: Date, lifetimeS: number, saUid: string, secret = 'sig'): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'RS256' })}.${b({ iat: iat.getTime() / 1000, exp: iat.getTime() / 1000 + lifetimeS, 'kubernetes.io': { serviceaccount: { uid: saUid } } })}.${secret}`;
}

interface Call {
  effect: 'requestToken' | 'applySecret' | 'applyConfigMap' | 'deleteGenerated' | 'liveImportUid' | 'patchStatus' | 'createEvent';
  args: unknown[];
}

/** Effects the test answers: each call is recorded, and answered by the next scripted answer (or a default). */
class ScriptedEffects implements ImportEffects {
  readonly calls: Call[] = [];
  tokenAnswers: Array<(plan: TokenRequestPlan) => Promise<IssuedToken>> = [];
  secretAnswers: Array<(s: V1Secret) => Promise<unknown>> = [];
  private rv = 100;
  tokens = 0;

  constructor(private readonly imports: unknown[] = []) {}

  requestToken(cluster: string, namespace: string, name: string, request: TokenRequestPlan): Promise<IssuedToken> {
    this.calls.push({ effect: 'requestToken', args: [cluster, namespace, name, request] });
    const next = this.tokenAnswers.shift();
    if (next) return next(request);
    this.tokens++;
    return Promise.resolve({ token: jwt(NOW, request.expirationSeconds, 'sa-uid', `secret-token-${this.tokens}`), expirationTimestamp: new Date(NOW.getTime() + request.expirationSeconds * 1000) });
  }

  applySecret(secret: V1Secret): Promise<unknown> {
    this.calls.push({ effect: 'applySecret', args: [secret] });
    const next = this.secretAnswers.shift();
    if (next) return next(secret);
    // As the API server answers a server-side apply: the object with a new resourceVersion.
    return Promise.resolve(JSON.parse(JSON.stringify({ ...secret, metadata: { ...secret.metadata, resourceVersion: String(++this.rv) } })));
  }

  applyConfigMap(configMap: V1ConfigMap): Promise<unknown> {
    this.calls.push({ effect: 'applyConfigMap', args: [configMap] });
    return Promise.resolve(JSON.parse(JSON.stringify({ ...configMap, metadata: { ...configMap.metadata, resourceVersion: String(++this.rv) } })));
  }

  /** Imports the API server has now (`namespace/name` → uid), whatever the cache says. */
  readonly liveImports = new Map<string, string>();

  liveImportUid(namespace: string, name: string): Promise<string | undefined> {
    this.calls.push({ effect: 'liveImportUid', args: [namespace, name] });
    return Promise.resolve(this.liveImports.get(`${namespace}/${name}`));
  }

  deleteGenerated(kind: 'Secret' | 'ConfigMap', namespace: string, name: string, _signal: AbortSignal, resourceVersion?: string): Promise<void> {
    this.calls.push({ effect: 'deleteGenerated', args: resourceVersion === undefined ? [kind, namespace, name] : [kind, namespace, name, resourceVersion] });
    return Promise.resolve();
  }

  patchStatus(namespace: string, name: string, status: ImportStatus, remove?: readonly string[]): Promise<unknown> {
    this.calls.push({ effect: 'patchStatus', args: remove ? [namespace, name, status, remove] : [namespace, name, status] });
    // As the API server answers: the import as stored (its spec too), with the new status.
    const stored = (this.imports.find((i) => (i as typeof rawImport).metadata.name === name) ?? rawImport) as typeof rawImport;
    return Promise.resolve({ ...stored, metadata: { ...stored.metadata, namespace, name, resourceVersion: String(++this.rv) }, status });
  }

  createEvent(event: CoreV1Event): Promise<void> {
    this.calls.push({ effect: 'createEvent', args: [event] });
    return Promise.resolve();
  }

  effects(): string[] {
    return this.calls.map((c) => c.effect);
  }

  lastStatus(): ImportStatus {
    const c = this.calls.filter((x) => x.effect === 'patchStatus').at(-1);
    return c!.args[2] as ImportStatus;
  }
}

const rawImport = {
  apiVersion: 'multicluster.admiralty.io/v1alpha1',
  kind: 'ServiceAccountImport',
  metadata: { name: 'imp', namespace: 'team', uid: 'imp-uid', generation: 1, resourceVersion: '10' },
  spec: { clusterName: 'cluster2', namespace: 'team', name: 'pod-lister' },
};

function cluster(patch: Partial<ClusterState> = {}, sa: RemoteServiceAccountView = { state: 'present', uid: 'sa-uid' }): ClusterState {
  return {
    name: 'cluster2',
    spec: { name: 'cluster2', server: SERVER, caPem: CA, auth: { kind: 'token', token: 'registration-token' }, source: 'kubeconfig' },
    reachable: true,
    lastError: undefined,
    lastStatusCode: undefined,
    settled: true,
    consent: undefined,
    serviceAccount: () => sa,
    noteCallFailure: () => undefined,
    noteCallSuccess: () => undefined,
    ...patch,
  } as ClusterState;
}

function cacheOf<T extends { namespace: string; name: string }>(items: T[]) {
  const source = new Subject<WatchEvent<T>>();
  const cache = new SharedCache<T>(source, { keyOf: (o) => `${o.namespace}/${o.name}` }).start();
  source.next({ type: 'RESET', items, resourceVersion: '1' });
  return { cache, source };
}

const started: Array<{ stop(): void }> = [];
afterEach(() => started.splice(0).forEach((c) => c.stop()));

function setup(opts: { imports?: unknown[]; secrets?: unknown[]; configMaps?: unknown[]; records?: unknown[]; cluster?: ClusterState | undefined; policies?: ImportPolicy[] } = {}) {
  const imports = cacheOf<CachedImport>((opts.imports ?? [rawImport]).map(projectImport));
  const secrets = cacheOf<CachedSecret>((opts.secrets ?? []).map(projectSecret(INSTALL_NS)));
  const configMaps = cacheOf<CachedConfigMap>((opts.configMaps ?? []).map(projectConfigMap));
  const records = cacheOf<CachedFederatedRecord>((opts.records ?? []).map(projectFederatedRecord));
  started.push(imports.cache, secrets.cache, configMaps.cache, records.cache);
  const effects = new ScriptedEffects(opts.imports);
  let logs = '';
  const stream = new Writable({ write: (chunk, _enc, cb) => ((logs += String(chunk)), cb()) });
  const c = 'cluster' in opts ? opts.cluster : cluster();
  const reconcilerOptions: ConstructorParameters<typeof Reconciler>[0] = {
    effects,
    imports: imports.cache,
    secrets: secrets.cache,
    configMaps: configMaps.cache,
    records: records.cache,
    registry: { get: (name) => (c && name === c.name ? c : undefined) },
    policies: () => opts.policies ?? [],
    installNamespace: INSTALL_NS,
    logger: createLogger({ component: 'controller', level: 'debug', stream }),
    metrics: new ControllerMetrics({ defaultMetrics: false }),
    refreshRatio: 0.6,
    safetyRequeueMs: 300_000,
    now: () => NOW,
  };
  const reconciler = new Reconciler(reconcilerOptions);
  const run = (key = 'team/imp') => reconciler.reconcile(key, new AbortController().signal);
  return { effects, reconciler, reconcilerOptions, run, imports, secrets, configMaps, records, logs: () => logs };
}

const status = (s: ImportStatus) => s.conditions?.find((c) => c.type === 'Ready');

describe('Reconciler effects', () => {
  it('mints, applies the Secret, then writes Ready=True, and asks to come back at about 60 % of the lifetime', async () => {
    const { effects, run, logs, reconciler } = setup();
    const result = await run();
    expect(effects.effects()).toEqual(['requestToken', 'applySecret', 'patchStatus']);
    expect(effects.calls[0]!.args).toEqual(['cluster2', 'team', 'pod-lister', { expirationSeconds: 3600, audiences: [] }]);
    const secret = effects.calls[1]!.args[0] as V1Secret;
    expect(secret.metadata).toMatchObject({ name: secretNameForImport('imp'), namespace: 'team', ownerReferences: [expect.objectContaining({ kind: 'ServiceAccountImport', uid: 'imp-uid', controller: true })] });
    expect(secret.metadata!.annotations![SecretAnnotations.fingerprint]).toBe(mintFingerprint({ spec: rawImport.spec, server: SERVER, caPem: CA }));
    expect(Buffer.from(secret.data!.server!, 'base64').toString()).toBe(SERVER);
    expect(status(effects.lastStatus())).toMatchObject({ status: 'True', reason: 'TokenIssued', observedGeneration: 1 });
    expect(effects.lastStatus().expirationTimestamp).toBe('2026-06-01T13:00:00Z');
    const after = (result as { requeueAfterMs: number }).requeueAfterMs;
    expect(after).toBeGreaterThanOrEqual(0.55 * 3_600_000);
    expect(after).toBeLessThanOrEqual(0.65 * 3_600_000);
    await reconciler.flushEvents();
    expect(logs()).toContain('token minted and Secret written');
    expect(logs()).not.toContain('secret-token-');
  });

  it('reads its own writes: a reconcile right after, before any watch event, makes no call', async () => {
    const { effects, run, secrets, imports } = setup();
    await run();
    expect(secrets.cache.pendingWrites).toBe(1);
    expect(imports.cache.pendingWrites).toBe(1);
    const before = effects.calls.length;
    const again = await run();
    expect(effects.calls.length).toBe(before);
    expect(again).toMatchObject({ requeueAfterMs: expect.any(Number) });
  });

  it('blocks on a Secret another object controls: no token is minted, SecretConflict is written once', async () => {
    const foreign = {
      metadata: { name: secretNameForImport('imp'), namespace: 'team', resourceVersion: '5', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: 'd', controller: true }] },
      data: {},
    };
    const { effects, run } = setup({ secrets: [foreign] });
    expect(await run()).toEqual({ requeueAfterMs: 300_000 });
    expect(effects.effects()).toEqual(['patchStatus', 'createEvent']);
    expect(status(effects.lastStatus())).toMatchObject({ status: 'False', reason: 'SecretConflict' });
  });

  it.each([
    [404, { kind: 'serviceaccounts' }, 'ServiceAccountNotFound', 'event'],
    [403, {}, 'Forbidden', 'backoff'],
    [401, {}, 'Unauthorized', 'backoff'],
    [500, {}, 'ClusterUnreachable', 'backoff'],
  ] as const)('turns a TokenRequest HTTP %s into %s (%s), redacting and bounding the source text', async (code, details, reason, retry) => {
    const { effects, run } = setup();
    const hostile = `refused Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln ${'x'.repeat(100_000)}`;
    effects.tokenAnswers.push(() => Promise.reject(new ApiException(code, hostile, JSON.stringify({ kind: 'Status', message: hostile, details }), {})));
    const outcome = run();
    if (retry === 'backoff') await expect(outcome).rejects.toThrow(/TokenRequest for ServiceAccount team\/pod-lister in cluster "cluster2" failed/);
    else expect(await outcome).toEqual({ requeueAfterMs: 300_000 });
    expect(effects.effects()).toEqual(['requestToken', 'patchStatus', 'createEvent']);
    const ready = status(effects.lastStatus())!;
    expect(ready).toMatchObject({ status: 'False', reason });
    expect(ready.message!.length).toBeLessThan(2_000);
    expect(ready.message).not.toContain('eyJzdWIiOiJ4In0');
  });

  it.each([
    ['no answer', () => new Error('no answer within 15 s (TokenRequest)'), true],
    ['HTTP 503', () => new ApiException(503, 'unavailable', '{}', {}), true],
    ['HTTP 429', () => new ApiException(429, 'throttled', '{}', {}), true],
    ['HTTP 403', () => new ApiException(403, 'forbidden', '{}', {}), false],
    ['HTTP 404', () => new ApiException(404, 'not found', '{}', {}), false],
  ] as const)('tells the cluster when a TokenRequest fails with %s only if that says the cluster is sick', async (_what, error, sick) => {
    const notes: Array<{ error: string; status?: number }> = [];
    let successes = 0;
    const c = cluster({ noteCallFailure: (e: string, status?: number) => void notes.push({ error: e, ...(status !== undefined ? { status } : {}) }), noteCallSuccess: () => void successes++ });
    const { effects, run } = setup({ cluster: c });
    effects.tokenAnswers.push(() => Promise.reject(error()));
    await run().catch(() => undefined);
    expect(notes).toHaveLength(sick ? 1 : 0);
    if (sick) expect(notes[0]!.error).toMatch(/^TokenRequest failed: /);
    expect(successes).toBe(0);
    // The next TokenRequest answers: the cluster hears that calls succeed again.
    await run();
    expect(successes).toBe(1);
  });

  it('maps a missing grant anchor (404 on the bound Secret) to Forbidden with the grant hint', async () => {
    const { effects, run } = setup({
      cluster: cluster({
        spec: { name: 'cluster2', server: SERVER, caPem: CA, auth: { kind: 'token', token: 't' }, source: 'registration', importer: { namespace: INSTALL_NS, name: 'cluster1' } },
        consent: { importer: 'cluster1', grants: [{ namespace: 'team', serviceAccount: 'pod-lister', anchorUid: 'anchor-uid' }] },
      }),
    });
    effects.tokenAnswers.push(() => Promise.reject(new ApiException(404, 'not found', JSON.stringify({ kind: 'Status', details: { kind: 'secrets', name: 'x' } }), {})));
    expect(await run()).toEqual({ requeueAfterMs: 300_000 });
    const request = effects.calls[0]!.args[3] as TokenRequestPlan;
    expect(request).toMatchObject({ boundSecret: grantObjectName('cluster1', { namespace: 'team', serviceAccount: 'pod-lister' }), boundSecretUid: 'anchor-uid' });
    expect(status(effects.lastStatus())).toMatchObject({ status: 'False', reason: 'Forbidden', message: expect.stringContaining('is missing in the source (revoked or incomplete grant; re-run kubemcsa grant)') });
  });

  it('stops with SecretRejected when the target refuses the Secret as invalid: one token, no retry', async () => {
    const { effects, run } = setup();
    effects.secretAnswers.push(() => Promise.reject(new ApiException(422, 'Unprocessable', JSON.stringify({ kind: 'Status', message: 'metadata.labels: Invalid value' }), {})));
    expect(await run()).toBeUndefined();
    expect(effects.effects()).toEqual(['requestToken', 'applySecret', 'patchStatus', 'createEvent']);
    expect(status(effects.lastStatus())).toMatchObject({ status: 'False', reason: 'SecretRejected' });
  });

  it('retries a Secret write refused for a passing reason (403 while RBAC caches lag) with backoff', async () => {
    const { effects, run } = setup();
    effects.secretAnswers.push(() => Promise.reject(new ApiException(403, 'Forbidden', JSON.stringify({ kind: 'Status', message: 'forbidden' }), {})));
    await expect(run()).rejects.toThrow(/writing Secret team\/.* failed/);
    expect(effects.effects()).toEqual(['requestToken', 'applySecret']);
  });

  it('waits without any call while a new endpoint has not answered, and reports ClusterNotFound for an unknown cluster', async () => {
    const unsettled = setup({ cluster: cluster({ settled: false }) });
    expect(await unsettled.run()).toEqual({ requeueAfterMs: 15_000 });
    expect(unsettled.effects.calls).toEqual([]);
    const missing = setup({ cluster: undefined });
    expect(await missing.run()).toEqual({ requeueAfterMs: 300_000 });
    expect(missing.effects.effects()).toEqual(['patchStatus', 'createEvent']);
    expect(status(missing.effects.lastStatus())).toMatchObject({ reason: 'ClusterNotFound' });
  });

  it("never mints for a registration whose Secret names another endpoint than the registry's cluster", async () => {
    const registration = { ...rawImport, metadata: { ...rawImport.metadata, namespace: INSTALL_NS, name: 'cluster2' }, spec: { clusterName: 'cluster2', namespace: INSTALL_NS, name: 'cluster1' } };
    const first = setup({ imports: [registration] });
    await first.run(`${INSTALL_NS}/cluster2`);
    const written = first.effects.calls[1]!.args[0] as V1Secret;
    // kubemcsa bootstrap re-points the Secret at another server; the registry still has the old one.
    const repointed = JSON.parse(JSON.stringify({ ...written, metadata: { ...written.metadata, resourceVersion: '200' } }));
    repointed.data.server = Buffer.from('https://elsewhere.example:6443').toString('base64');
    // As kubemcsa writes it: its fingerprint and data hash are of the new content.
    repointed.metadata.annotations[SecretAnnotations.fingerprint] = mintFingerprint({ spec: registration.spec, server: 'https://elsewhere.example:6443', caPem: CA });
    repointed.metadata.annotations[SecretAnnotations.dataHash] = secretDataHash(repointed.data);
    const { effects, run } = setup({ imports: [registration], secrets: [repointed] });
    expect(await run(`${INSTALL_NS}/cluster2`)).toEqual({ requeueAfterMs: 1_000 });
    expect(effects.calls).toEqual([]);
  });

  it('records an Event on a transition to not Ready, off the reconcile path', async () => {
    const { effects, run, reconciler } = setup({ cluster: cluster({ reachable: false, lastError: 'connect ECONNREFUSED' }) });
    expect(await run()).toEqual({ requeueAfterMs: 300_000 });
    await reconciler.flushEvents();
    expect(effects.effects()).toEqual(['patchStatus', 'createEvent']);
    const event = effects.calls[1]!.args[0] as CoreV1Event;
    expect(event).toMatchObject({ type: 'Warning', reason: 'ClusterUnreachable', involvedObject: { kind: 'ServiceAccountImport', name: 'imp', uid: 'imp-uid' } });
  });
});

describe('Reconciler: an import that no longer exists', () => {
  const secretOf = (ownerReferences?: unknown[]) => ({
    ...buildImportSecret({
      importName: 'imp', importNamespace: 'team', importUid: 'imp-uid',
      credential: { token: 't', server: SERVER, caPem: CA, namespace: 'team' }, issued: NOW, expiration: NOW, remoteUid: 'sa-uid', fingerprint: 'fp',
    }),
    ...(ownerReferences ? { metadata: { name: secretNameForImport('imp'), namespace: 'team', labels: { [IMPORT_LABEL]: 'imp' }, ownerReferences } } : {}),
  });

  it('deletes the Secret and the ConfigMap it controlled at once (the garbage collector may not, once the CRD is gone)', async () => {
    const cm = buildFederatedConfigMap({ importName: 'imp', importNamespace: 'team', importUid: 'imp-uid', source: { server: SERVER, caPem: CA, audience: 'a' } });
    const s = setup({ imports: [], secrets: [{ ...secretOf(), metadata: { ...secretOf().metadata, resourceVersion: '7' } }], configMaps: [{ ...cm, metadata: { ...cm.metadata, resourceVersion: '8' } }] });
    expect(await s.run()).toBeUndefined();
    // The API server is asked first whether an import of that name exists now; then each object
    // is deleted with the version it was seen at as a precondition.
    expect(s.effects.calls.map((c) => c.args)).toEqual([['team', 'imp'], ['Secret', 'team', secretNameForImport('imp'), '7'], ['ConfigMap', 'team', configMapNameForImport('imp'), '8']]);
    await s.reconciler.flushEvents();
    expect(s.logs()).toContain('deleted the object of a deleted import');
  });

  it('leaves a Secret whose import was re-created under that name and is not cached yet (a registration removed and written again)', async () => {
    const s = setup({ imports: [], secrets: [{ ...secretOf(), metadata: { ...secretOf().metadata, resourceVersion: '7' } }] });
    s.effects.liveImports.set('team/imp', 'imp-uid');
    expect(await s.run()).toEqual({ requeueAfterMs: 1_000 });
    expect(s.effects.effects()).toEqual(['liveImportUid']);
    // Another import of that name (not the Secret's owner) exists: the Secret is an orphan after all.
    s.effects.liveImports.set('team/imp', 'another-uid');
    expect(await s.run()).toBeUndefined();
    expect(s.effects.effects()).toEqual(['liveImportUid', 'liveImportUid', 'deleteGenerated']);
  });

  it('never touches a Secret of that name that something else, or nothing, controls', async () => {
    for (const refs of [[{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: 'd', controller: true }], []]) {
      const s = setup({ imports: [], secrets: [secretOf(refs)] });
      await s.run();
      expect(s.effects.calls).toEqual([]);
    }
  });

  it('waits for the imports to be listed before it calls anything an orphan', async () => {
    const imports = new Subject<WatchEvent<CachedImport>>();
    const cache = new SharedCache<CachedImport>(imports, { keyOf: (o) => `${o.namespace}/${o.name}` }).start();
    started.push(cache);
    const s = setup({ imports: [], secrets: [secretOf()] });
    const reconciler = new Reconciler({ ...s.reconcilerOptions, imports: cache });
    expect(await reconciler.reconcile('team/imp', new AbortController().signal)).toEqual({ requeueAfterMs: 1_000 });
    expect(s.effects.calls).toEqual([]);
  });
});

describe('Reconciler effects for federated imports (ADR 0022)', () => {
  const AUDIENCE = 'multicluster.admiralty.io/cluster2';
  const fedImport = { ...rawImport, metadata: { ...rawImport.metadata, name: 'fed' }, spec: { mode: 'Federated', clusterName: 'cluster2' } };
  const record = {
    metadata: { name: 'federate-cluster2', namespace: INSTALL_NS, resourceVersion: '3', labels: { [FEDERATED_SOURCE_LABEL]: 'cluster2' } },
    data: { server: SERVER, 'ca.crt': CA, audience: AUDIENCE, unrelated: 'ignored' },
  };
  const run = (s: ReturnType<typeof setup>) => s.reconciler.reconcile('team/fed', new AbortController().signal);

  it('writes the ConfigMap by server-side apply and reports Ready=Federated with the audience and lifetime; no token is requested, no Secret written', async () => {
    const s = setup({ imports: [fedImport], records: [record], cluster: undefined });
    const result = await run(s);
    expect(s.effects.effects()).toEqual(['applyConfigMap', 'patchStatus']);
    const cm = s.effects.calls[0]!.args[0] as V1ConfigMap;
    expect(cm).toEqual(buildFederatedConfigMap({ importName: 'fed', importNamespace: 'team', importUid: 'imp-uid', source: { server: SERVER, caPem: CA, audience: AUDIENCE } }));
    const st = s.effects.lastStatus();
    expect(status(st)).toMatchObject({ status: 'True', reason: 'Federated', observedGeneration: 1 });
    expect(status(st)!.message).toBe(`pods get their own ServiceAccount token for federated source "cluster2" (audience ${AUDIENCE}, lifetime 3600s) with its server and CA from ConfigMap ${configMapNameForImport('fed')}`);
    expect(st).toMatchObject({ audience: AUDIENCE, expirationSeconds: 3600 });
    expect(st.secrets).toBeUndefined();
    expect(result).toEqual({ requeueAfterMs: 300_000 });
    // Read-your-writes: the next reconcile sees the ConfigMap it wrote and the status, and writes nothing.
    s.effects.calls.length = 0;
    await run(s);
    expect(s.effects.effects()).toEqual([]);
  });

  it('is ClusterNotFound without a record, with a Warning Event; writes no ConfigMap', async () => {
    const s = setup({ imports: [fedImport], cluster: undefined });
    await run(s);
    expect(s.effects.effects()).toEqual(['patchStatus', 'createEvent']);
    expect(status(s.effects.lastStatus())).toMatchObject({ status: 'False', reason: 'ClusterNotFound' });
  });

  it('is InvalidFederatedSource for a record without an audience, naming the ConfigMap', async () => {
    const s = setup({ imports: [fedImport], records: [{ ...record, data: { server: SERVER, 'ca.crt': CA } }], cluster: undefined });
    await run(s);
    expect(status(s.effects.lastStatus())).toMatchObject({ status: 'False', reason: 'InvalidFederatedSource', message: expect.stringContaining(`ConfigMap ${INSTALL_NS}/federate-cluster2, is invalid: audience is missing or empty`) });
  });

  it('is Forbidden when the target\'s policy turns sameness off for the source, before anything is written', async () => {
    const s = setup({ imports: [fedImport], records: [record], cluster: undefined, policies: [{ metadata: { name: 'strict' }, spec: { namespaceSameness: false } }] });
    await run(s);
    expect(s.effects.effects()).toEqual(['patchStatus', 'createEvent']);
    expect(status(s.effects.lastStatus())).toMatchObject({ status: 'False', reason: 'Forbidden' });
  });

  it('deletes the Secret of an import switched from Token to Federated, and drops the token fields from its status', async () => {
    const switched = { ...fedImport, metadata: { ...fedImport.metadata, generation: 2 }, status: { secrets: [{ name: secretNameForImport('fed') }], expirationTimestamp: '2026-06-01T13:00:00Z', observedGeneration: 1 } };
    const oldSecret = buildImportSecret({
      importName: 'fed', importNamespace: 'team', importUid: 'imp-uid',
      credential: { token: 't', server: SERVER, caPem: CA, namespace: 'team' }, issued: NOW, expiration: NOW, remoteUid: 'sa-uid', fingerprint: 'fp',
    });
    const s = setup({ imports: [switched], records: [record], secrets: [oldSecret], cluster: undefined });
    await run(s);
    expect(s.effects.effects()).toEqual(['deleteGenerated', 'applyConfigMap', 'patchStatus']);
    expect(s.effects.calls[0]!.args).toEqual(['Secret', 'team', secretNameForImport('fed')]);
    const call = s.effects.calls.at(-1)!;
    expect(call.args[3]).toEqual(['secrets', 'expirationTimestamp']);
    expect(call.args[2]).not.toHaveProperty('secrets');
    expect(call.args[2]).toMatchObject({ audience: AUDIENCE, observedGeneration: 2 });
  });

  it('deletes the ConfigMap of an import switched back to Token, and drops the federated fields from its status', async () => {
    const cm = buildFederatedConfigMap({ importName: 'imp', importNamespace: 'team', importUid: 'imp-uid', source: { server: SERVER, caPem: CA, audience: AUDIENCE } });
    const back = { ...rawImport, status: { audience: AUDIENCE, expirationSeconds: 3600 } };
    const s = setup({ imports: [back], configMaps: [cm] });
    await s.run();
    expect(s.effects.effects()).toEqual(['deleteGenerated', 'requestToken', 'applySecret', 'patchStatus']);
    expect(s.effects.calls[0]!.args).toEqual(['ConfigMap', 'team', configMapNameForImport('imp')]);
    expect(s.effects.calls.at(-1)!.args[3]).toEqual(['audience', 'expirationSeconds']);
  });

  it('leaves a ConfigMap of its name that another kind of object controls, and says so', async () => {
    const cm = buildFederatedConfigMap({ importName: 'fed', importNamespace: 'team', importUid: 'imp-uid', source: { server: SERVER, caPem: CA, audience: AUDIENCE } });
    cm.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: 'x', controller: true }];
    const s = setup({ imports: [fedImport], records: [record], configMaps: [cm], cluster: undefined });
    await run(s);
    expect(s.effects.effects()).toEqual(['patchStatus', 'createEvent']);
    expect(status(s.effects.lastStatus())).toMatchObject({ status: 'False', reason: 'ConfigMapConflict' });
  });
});
