// The lean client (streams/kube-http.ts) against a local HTTPS server: JSON calls, API errors as
// client-node's ApiException, deadlines, response bounds, one keep-alive pool per KubeConfig and
// the KubeConfig's authentication applied on every request (tokens rotate).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { ApiException, KubeConfig, type User } from '@kubernetes/client-node';
import { createCa, issueCertificate } from '../../../src/tls/pki.js';
import { kubeHttp } from '../../../streams/kube-http.js';

let server: https.Server;
let caPem = '';
let port = 0;
const connections = new Set<Socket>();
let connectionCount = 0;
const seen: Array<{ method: string; url: string; auth: string | undefined; contentType: string | undefined; body: string }> = [];

beforeAll(async () => {
  const ca = await createCa('kube-http test');
  caPem = ca.certPem;
  const leaf = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' });
  server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, contentType: req.headers['content-type'], body });
      if (req.url!.startsWith('/slow')) return; // never answers
      if (req.url!.startsWith('/big')) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ data: 'x'.repeat(4096) }));
      if (req.url!.startsWith('/missing')) return void res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'secrets "x" not found', details: { kind: 'secrets' } }));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ echo: body ? JSON.parse(body) : null, query: req.url }));
    });
  });
  server.on('connection', (s: Socket) => {
    connectionCount++;
    connections.add(s);
    s.on('close', () => connections.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of connections) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

function kubeConfig(token: { value: string }): KubeConfig {
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

describe('kubeHttp', () => {
  it('sends JSON with the content type asked for and the query, parses the answer, and reuses one connection', async () => {
    const token = { value: 'first' };
    const client = kubeHttp(kubeConfig(token));
    const before = connectionCount;
    const a = await client.call('PATCH', '/api/v1/namespaces/n/secrets/s', { body: { data: { k: 'v' } }, contentType: 'application/apply-patch+yaml', query: { fieldManager: 'm', force: 'true' }, timeoutMs: 5_000, what: 'apply' });
    expect(a).toEqual({ echo: { data: { k: 'v' } }, query: '/api/v1/namespaces/n/secrets/s?fieldManager=m&force=true' });
    expect(seen.at(-1)).toMatchObject({ method: 'PATCH', contentType: 'application/apply-patch+yaml', auth: 'Bearer first' });
    token.value = 'second';
    await client.call('POST', '/p', { body: {}, timeoutMs: 5_000, what: 'post' });
    await client.call('GET', '/g', { timeoutMs: 5_000, what: 'get' });
    expect(seen.at(-1)).toMatchObject({ method: 'GET', auth: 'Bearer second' });
    expect(connectionCount - before).toBe(1);
  });

  it("throws client-node's ApiException with the status and the Status body", async () => {
    const err = await kubeHttp(kubeConfig({ value: 't' })).call('DELETE', '/missing', { timeoutMs: 5_000, what: 'delete' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<string>).code).toBe(404);
    expect(JSON.parse((err as ApiException<string>).body)).toMatchObject({ message: 'secrets "x" not found', details: { kind: 'secrets' } });
  });

  it('fails a call that gets no answer within its deadline, naming it', async () => {
    const err = await kubeHttp(kubeConfig({ value: 't' })).call('POST', '/slow', { body: {}, timeoutMs: 300, what: 'TokenRequest in cluster "c"' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('no answer within 0.3 s (TokenRequest in cluster "c")');
  });

  it('stops at the caller\'s abort', async () => {
    const ac = new AbortController();
    const call = kubeHttp(kubeConfig({ value: 't' })).call('GET', '/slow', { signal: ac.signal, timeoutMs: 10_000, what: 'get' });
    ac.abort(new Error('shutdown'));
    await expect(call).rejects.toThrow();
  });

  it('fails an answer larger than its bound', async () => {
    await expect(kubeHttp(kubeConfig({ value: 't' })).call('GET', '/big', { timeoutMs: 5_000, what: 'get', maxResponseBytes: 1024 })).rejects.toThrow(/larger than 1 KiB/);
  });
});
