// A hostile source cluster: a small HTTPS server registered like any source (a registration
// import and its Secret in the install namespace) that answers the controller's LIST and WATCH of
// ServiceAccounts with huge error texts carrying a token, an endless LIST body, and an endless
// watch event. The real controller, against the real target cluster1, must abort each response at
// its bound, report a clear, bounded and redacted reason on the imports, keep tokens out of
// conditions, Events and logs, and stay healthy and bounded in memory.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { CoreV1Api } from '@kubernetes/client-node';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, IMPORT_KIND, IMPORT_PLURAL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { buildImportSecret } from '../../src/secret.js';
import { createCa, issueCertificate } from '../../src/tls/pki.js';
import { RESPONSE_LIMITS } from '../../streams/bounded-body.js';
import { adminKubeConfig, createTestNamespace, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { freePort } from '../harness/ports.js';
import { apis, createImport, getImport, installControllerPrerequisites, startController, type RunningController } from './controller-support.js';

/** The longest error description the controller writes (src/describe-error.ts). */
const MAX_DESCRIPTION_LENGTH = 1024;

const CLUSTER = 'cluster1';
// A token-shaped string the hostile source puts in its error texts: it must never come out anywhere.
const PLANTED = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImhvcyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aG9zdGlsZSJ9.cGxhbnRlZC1zaWduYXR1cmUtcGxhbnRlZC1zaWc';
const SIGNATURE = 'cGxhbnRlZC1zaWduYXR1cmU';
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/;
const MiB = 1024 * 1024;

type Mode = 'huge-error' | 'huge-list' | 'huge-event';

interface Served {
  path: string;
  watch: boolean;
  sent: number;
  /** The HTTP version the controller spoke ('2.0', as to an API server). */
  version: string;
  /** The client hung up before the server finished (it stops on its own only at `cap`). */
  abortedByClient: boolean;
}

/** The hostile source: what it answers depends on `mode`. */
class HostileSource {
  mode: Mode = 'huge-error';
  readonly served: Served[] = [];
  private server?: http2.Http2SecureServer;
  private readonly sockets = new Set<Socket>();
  url = '';
  caPem = '';

  async start(): Promise<void> {
    const ca = await createCa('hostile-source-ca');
    const serving = await issueCertificate(ca, { commonName: 'hostile', ipAddresses: ['127.0.0.1'], usage: 'server' });
    this.caPem = ca.certPem;
    const port = await freePort();
    // HTTP/2 as an API server speaks it (the controller's one connection per cluster), HTTP/1.1 to whoever asks for it.
    this.server = http2.createSecureServer({ cert: serving.certPem, key: serving.keyPem, allowHTTP1: true }, (req, res) => this.answer(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private answer(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://x');
    const served: Served = { path: url.pathname, watch: url.searchParams.get('watch') === 'true', sent: 0, version: req.httpVersion, abortedByClient: false };
    this.served.push(served);
    if (this.mode === 'huge-error') {
      // 4 MiB of Status message, the token at its start, where a naive reader would copy it.
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, message: `internal error for ${PLANTED}: ${'E'.repeat(4 * MiB)}` });
      served.sent = body.length;
      res.writeHead(500, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (this.mode === 'huge-list' && !served.watch) {
      const item = JSON.stringify({ metadata: { name: 'padding', namespace: 'default', uid: 'u', resourceVersion: '1', annotations: { pad: 'p'.repeat(64 * 1024) } } });
      return this.stream(res, served, '{"kind":"ServiceAccountList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[' + item, `,${item}`, 4 * RESPONSE_LIMITS.listBytes);
    }
    if (!served.watch) {
      const list = JSON.stringify({ kind: 'ServiceAccountList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] });
      served.sent = list.length;
      res.writeHead(200, { 'content-type': 'application/json' }).end(list);
      return;
    }
    // huge-event: one watch line that never ends.
    this.stream(res, served, '{"type":"ADDED","object":{"metadata":{"name":"', 'a'.repeat(64 * 1024), 4 * RESPONSE_LIMITS.eventBytes);
  }

  /** Writes `head`, then `fill` over and over (honouring back-pressure) until the client hangs up or `cap` bytes. */
  private stream(res: http2.Http2ServerResponse, served: Served, head: string, fill: string, cap: number): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.on('close', () => {
      served.abortedByClient = !res.writableFinished;
    });
    const pump = () => {
      while (!gone(res) && served.sent < cap) {
        const chunk = served.sent === 0 ? head : fill;
        served.sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!gone(res)) res.end();
    };
    pump();
  }
}

/** The client hung up (its HTTP/2 stream reset, or its HTTP/1.1 connection closed). */
function gone(res: http2.Http2ServerResponse): boolean {
  // With allowHTTP1, an HTTP/1.1 client gets node:http's response, which has no stream.
  const h1 = res as unknown as { stream?: http2.ServerHttp2Stream; destroyed?: boolean };
  return h1.stream ? h1.stream.destroyed || h1.stream.closed : Boolean(h1.destroyed);
}

const source = new HostileSource();
let controller: RunningController;
let tenant: Awaited<ReturnType<typeof createTestNamespace>>;
const registration = uniqueName('hostile');
const tenantImport = uniqueName('from-hostile');

async function readyCondition(namespace: string, name: string) {
  return (await getImport(CLUSTER, namespace, name))?.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Waits until both imports (the registration and a tenant's) report `pattern` in a Ready=False ClusterUnreachable condition. */
async function bothReport(pattern: RegExp): Promise<string[]> {
  const messages: string[] = [];
  await waitFor(`both imports to report ${pattern}`, async () => {
    messages.length = 0;
    for (const [ns, name] of [[INSTALL_NAMESPACE, registration], [tenant.name, tenantImport]] as const) {
      const c = await readyCondition(ns, name);
      if (c?.status !== 'False' || c.reason !== 'ClusterUnreachable' || !pattern.test(c.message ?? '')) return false;
      messages.push(c.message ?? '');
    }
    return true;
  }, 60_000, 200);
  return messages;
}

function expectBoundedAndClean(message: string) {
  expect(message.length).toBeLessThanOrEqual(MAX_DESCRIPTION_LENGTH);
  expect(message).toContain(`cluster "${registration}"`);
  expect(message).not.toMatch(JWT);
  expect(message).not.toContain(SIGNATURE);
}

beforeAll(async () => {
  await installControllerPrerequisites(CLUSTER);
  await source.start();
  const { custom, core } = apis(CLUSTER);
  // The registration, as `kubemcsa bootstrap` would have written it for this source.
  const reg = (await custom.createNamespacedCustomObject({
    group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL,
    body: { apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, metadata: { name: registration }, spec: { clusterName: registration, namespace: INSTALL_NAMESPACE, name: 'cluster1', expirationSeconds: 86400 } },
  })) as { metadata: { uid: string } };
  const now = new Date();
  await core.createNamespacedSecret({
    namespace: INSTALL_NAMESPACE,
    body: buildImportSecret({
      importName: registration,
      importNamespace: INSTALL_NAMESPACE,
      importUid: reg.metadata.uid,
      credential: { server: source.url, caPem: source.caPem, token: 'registration-token-of-the-hostile-source', namespace: INSTALL_NAMESPACE },
      issued: now,
      expiration: new Date(now.getTime() + 3600_000),
      remoteUid: 'unknown',
      fingerprint: 'unknown',
    }),
  });
  tenant = await createTestNamespace(CLUSTER, 'hostile-tenant');
  await createImport(CLUSTER, { metadata: { name: tenantImport, namespace: tenant.name }, spec: { clusterName: registration, namespace: tenant.name, name: 'app' } });
  controller = await startController();
}, 120_000);

afterAll(async () => {
  await controller?.stop();
  await tenant?.delete();
  await apis(CLUSTER).custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL, name: registration }).catch(() => undefined);
  await source.stop();
}, 120_000);

describe('a hostile source cluster', () => {
  it('sends a 4 MiB error text carrying a token: the imports say the cluster is unreachable in a bounded, redacted message', async () => {
    source.mode = 'huge-error';
    const messages = await bothReport(/HTTP 500/);
    for (const m of messages) {
      expectBoundedAndClean(m);
      expect(m).toContain('internal error for [redacted]');
      expect(m).toMatch(/characters in all/);
    }
  });

  it('sends an endless LIST body: the controller aborts it at its bound and says so', async () => {
    source.mode = 'huge-list';
    const messages = await bothReport(/response larger than 64 MiB; aborted/);
    for (const m of messages) expectBoundedAndClean(m);
    const lists = source.served.filter((s) => !s.watch && s.sent > RESPONSE_LIMITS.listBytes);
    expect(lists.length).toBeGreaterThan(0);
    // Over HTTP/2, where the controller's one connection to the source carries its other requests too.
    expect(lists.map((s) => s.version)).toEqual(lists.map(() => '2.0'));
    // The client hung up: the server never reached its own cap of four times the bound.
    for (const s of lists) expect(s.abortedByClient).toBe(true);
  });

  it('sends an endless watch event: the controller aborts the watch at its bound and says so', async () => {
    source.mode = 'huge-event';
    const messages = await bothReport(/an event larger than 8 MiB; aborted/);
    for (const m of messages) expectBoundedAndClean(m);
    const watches = source.served.filter((s) => s.watch && s.sent > RESPONSE_LIMITS.eventBytes);
    expect(watches.length).toBeGreaterThan(0);
    for (const s of watches) expect(s.abortedByClient).toBe(true);
  });

  it('left no token in Events or log lines, and the controller healthy and bounded in memory', async () => {
    const events = await adminKubeConfig(CLUSTER).makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: tenant.name });
    const ours = events.items.filter((e) => e.involvedObject.name === tenantImport);
    expect(ours.length).toBeGreaterThan(0);
    for (const e of ours) {
      expect((e.message ?? '').length).toBeLessThanOrEqual(MAX_DESCRIPTION_LENGTH);
      expect(e.message).not.toMatch(JWT);
    }
    const log = controller.log();
    expect(log).not.toMatch(JWT);
    expect(log).not.toContain(SIGNATURE);
    for (const line of log.split('\n')) expect(line.length).toBeLessThan(32 * 1024);
    expect(controller.process.running).toBe(true);
    const healthz = await fetch(`http://127.0.0.1:${controller.probesPort}/healthz`);
    expect(healthz.status).toBe(200);
    const rss = await controller.metric('process_resident_memory_bytes');
    expect(rss).toBeDefined();
    expect(rss!).toBeLessThan(400 * MiB);
  });
});
