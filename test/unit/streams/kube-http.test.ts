// The lean client (streams/kube-http.ts) against local HTTPS servers, one that offers HTTP/2 (as
// every kube-apiserver does) and one that speaks only HTTP/1.1 (a proxy in front of one): JSON
// calls, API errors as client-node's ApiException, deadlines, response bounds, one connection (or
// keep-alive pool) per KubeConfig and the KubeConfig's authentication applied on every request
// (tokens rotate). With HTTP/2, watches and calls share one connection, and a connection that stops
// answering is closed after an abandoned request so the next one reconnects.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ApiException, KubeConfig, type User } from '@kubernetes/client-node';
import { createCa, issueCertificate } from '../../../src/tls/pki.js';
import { kubeHttp } from '../../../streams/kube-http.js';
import { startRelay } from '../../harness/sick-endpoints.js';

interface Server {
  close(): Promise<void>;
  port: number;
  connections(): number;
  seen: Array<{ method: string; url: string; auth: string | undefined; contentType: string | undefined; body: string; version: string; clientCert: string | undefined }>;
}

let caPem = '';
let leaf: { certPem: string; keyPem: string };
/** Two client certificates, as a certificate file or an exec plugin would hand out before and after a rotation. */
let clientCerts: Array<{ certPem: string; keyPem: string }>;

beforeAll(async () => {
  const ca = await createCa('kube-http test');
  caPem = ca.certPem;
  leaf = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' });
  clientCerts = [await issueCertificate(ca, { commonName: 'client-before', usage: 'client' }), await issueCertificate(ca, { commonName: 'client-after', usage: 'client' })];
});

/** A server answering as the tests expect: /slow never answers, /stream sends a line and stays open, /big is 4 KiB, /missing a 404 Status. */
async function startServer(protocol: 'h2' | 'http/1.1'): Promise<Server> {
  const seen: Server['seen'] = [];
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, contentType: req.headers['content-type'], body, version: req.httpVersion, clientCert: peer.subject ? String(peer.subject.CN) : undefined });
      if (req.url!.startsWith('/slow')) return; // never answers
      if (req.url!.startsWith('/stream')) return void (res as http.ServerResponse).writeHead(200, { 'Content-Type': 'application/json' }).write('{"type":"ADDED"}\n');
      if (req.url!.startsWith('/big')) return void (res as http.ServerResponse).writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ data: 'x'.repeat(4096) }));
      if (req.url!.startsWith('/missing')) return void (res as http.ServerResponse).writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'secrets "x" not found', details: { kind: 'secrets' } }));
      (res as http.ServerResponse).writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ echo: body ? JSON.parse(body) : null, query: req.url }));
    });
  };
  // Client certificates are asked for, not required: the tests with one see which was presented.
  const tlsOpts = { cert: leaf.certPem, key: leaf.keyPem, requestCert: true, rejectUnauthorized: false };
  const server: net.Server = protocol === 'h2' ? http2.createSecureServer({ ...tlsOpts, allowHTTP1: true }, handler) : https.createServer(tlsOpts, handler);
  const sockets = new Set<Socket>();
  let count = 0;
  server.on('connection', (s: Socket) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    connections: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function kubeConfig(port: number, token: { value: string }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', authProvider: { name: 'test-rotating', config: {} } }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  kc.addAuthenticator({
    isAuthProvider: (user: User) => user.authProvider?.name === 'test-rotating',
    applyAuthentication: async (_u: User, opts: { headers?: Record<string, string> }) => {
      opts.headers ??= {};
      opts.headers.Authorization = `Bearer ${token.value}`;
    },
  });
  return kc;
}

describe.each([
  // With a server without HTTP/2, the first connection learns so (ALPN) and is replaced by the pool's.
  { protocol: 'h2' as const, version: '2.0', firstConnections: 1 },
  { protocol: 'http/1.1' as const, version: '1.1', firstConnections: 2 },
])('kubeHttp against a server speaking $protocol', ({ protocol, version, firstConnections }) => {
  let server: Server;
  let port = 0;
  let seen: Server['seen'];
  beforeAll(async () => {
    server = await startServer(protocol);
    port = server.port;
    seen = server.seen;
  });
  afterAll(() => server.close());

  it('sends JSON with the content type asked for and the query, parses the answer, and reuses one connection', async () => {
    const token = { value: 'first' };
    const client = kubeHttp(kubeConfig(port, token));
    const before = server.connections();
    const a = await client.call('PATCH', '/api/v1/namespaces/n/secrets/s', { body: { data: { k: 'v' } }, contentType: 'application/apply-patch+yaml', query: { fieldManager: 'm', force: 'true' }, timeoutMs: 5_000, what: 'apply' });
    expect(a).toEqual({ echo: { data: { k: 'v' } }, query: '/api/v1/namespaces/n/secrets/s?fieldManager=m&force=true' });
    expect(seen.at(-1)).toMatchObject({ method: 'PATCH', contentType: 'application/apply-patch+yaml', auth: 'Bearer first', version });
    token.value = 'second';
    await client.call('POST', '/p', { body: {}, timeoutMs: 5_000, what: 'post' });
    await client.call('GET', '/g', { timeoutMs: 5_000, what: 'get' });
    expect(seen.at(-1)).toMatchObject({ method: 'GET', auth: 'Bearer second' });
    expect(server.connections() - before).toBe(firstConnections);
  });

  it('presents a rotated client certificate on a new connection from the next request on', async () => {
    const b64 = (pem: string) => Buffer.from(pem).toString('base64');
    // What client-node reads anew on every request: a certificate file rewritten in place, say.
    const user = { name: 'u', certData: b64(clientCerts[0]!.certPem), keyData: b64(clientCerts[0]!.keyPem) };
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caData: b64(caPem), skipTLSVerify: false }],
      users: [user],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    });
    const client = kubeHttp(kc);
    const presented = async () => {
      await client.call('GET', '/whoami', { timeoutMs: 5_000, what: 'get' });
      return seen.at(-1)!.clientCert;
    };
    expect([await presented(), await presented()]).toEqual(['client-before', 'client-before']);
    const before = server.connections();
    user.certData = b64(clientCerts[1]!.certPem);
    user.keyData = b64(clientCerts[1]!.keyPem);
    expect([await presented(), await presented()]).toEqual(['client-after', 'client-after']);
    expect(server.connections() - before).toBe(1);
  });

  it("throws client-node's ApiException with the status and the Status body", async () => {
    const err = await kubeHttp(kubeConfig(port, { value: 't' })).call('DELETE', '/missing', { timeoutMs: 5_000, what: 'delete' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<string>).code).toBe(404);
    expect(JSON.parse((err as ApiException<string>).body)).toMatchObject({ message: 'secrets "x" not found', details: { kind: 'secrets' } });
  });

  it('fails a call that gets no answer within its deadline, naming it', async () => {
    const err = await kubeHttp(kubeConfig(port, { value: 't' })).call('POST', '/slow', { body: {}, timeoutMs: 300, what: 'TokenRequest in cluster "c"' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('no answer within 0.3 s (TokenRequest in cluster "c")');
  });

  it('stops at the caller\'s abort', async () => {
    const ac = new AbortController();
    const call = kubeHttp(kubeConfig(port, { value: 't' })).call('GET', '/slow', { signal: ac.signal, timeoutMs: 10_000, what: 'get' });
    ac.abort(new Error('shutdown'));
    await expect(call).rejects.toThrow();
  });

  it('fails an answer larger than its bound', async () => {
    await expect(kubeHttp(kubeConfig(port, { value: 't' })).call('GET', '/big', { timeoutMs: 5_000, what: 'get', maxResponseBytes: 1024 })).rejects.toThrow(/larger than 1 KiB/);
  });
});

describe('kubeHttp over HTTP/2', () => {
  it('carries a watch and concurrent calls on one connection', async () => {
    const server = await startServer('h2');
    const watching = new AbortController();
    try {
      const client = kubeHttp(kubeConfig(server.port, { value: 't' }));
      const watch = await client.open('/stream', { watch: 'true' }, watching.signal);
      expect(watch.statusCode).toBe(200);
      const first = await new Promise<string>((r) => watch.body.once('data', (c: Buffer) => r(c.toString())));
      expect(first).toContain('ADDED');
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => client.call('GET', `/g${i}`, { timeoutMs: 5_000, what: 'get' })));
      expect(answers.map((a) => (a as { query: string }).query)).toEqual(Array.from({ length: 8 }, (_, i) => `/g${i}`));
      expect(server.connections()).toBe(1);
      expect(server.seen.every((r) => r.version === '2.0')).toBe(true);
    } finally {
      watching.abort();
      await server.close();
    }
  });

  it('closes a connection that stops answering once a request on it is abandoned, and the next request reconnects', async () => {
    const server = await startServer('h2');
    const relay = await startRelay(`https://127.0.0.1:${server.port}`, { newConnections: 'pass' });
    try {
      const client = kubeHttp(kubeConfig(Number(new URL(relay.url).port), { value: 't' }));
      await client.call('GET', '/before', { timeoutMs: 5_000, what: 'get' });
      relay.freeze();
      await expect(client.call('GET', '/frozen', { timeoutMs: 300, what: 'get' })).rejects.toThrow('no answer within 0.3 s (get)');
      // The PING sent after the abandoned request gets no answer within 5 s: the connection is
      // closed, and a request after that opens a new one instead of waiting on the frozen one.
      const started = Date.now();
      let answered = false;
      while (!answered && Date.now() - started < 10_000) answered = await client.call('GET', '/after', { timeoutMs: 1_000, what: 'get' }).then(() => true, () => false);
      expect(answered).toBe(true);
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(relay.connections()).toBe(2);
    } finally {
      await relay.stop();
      await server.close();
    }
  }, 20_000);

  it('starts no connection for a request aborted before it is sent, and one aborted while connecting leaves no unhandled failure', async () => {
    // A port that refuses connections.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const refused = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const client = kubeHttp(kubeConfig(refused, { value: 't' }));
      const before = new AbortController();
      before.abort(new Error('the cluster was removed'));
      await expect(client.call('GET', '/x', { signal: before.signal, timeoutMs: 1_000, what: 'get' })).rejects.toThrow('the cluster was removed');
      // Had it started a connection, its refusal (a few ms on loopback) would find no one waiting.
      const deadline = Date.now() + 300;
      while (unhandled.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(unhandled).toEqual([]);
      const during = new AbortController();
      const call = client.call('GET', '/x', { signal: during.signal, timeoutMs: 1_000, what: 'get' });
      during.abort(new Error('the cluster was removed'));
      await expect(call).rejects.toThrow('the cluster was removed');
      // The attempt that was under way fails with no one waiting; the next call makes its own.
      await expect(client.call('GET', '/x', { timeoutMs: 1_000, what: 'get' })).rejects.toThrow(/ECONNREFUSED/);
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
