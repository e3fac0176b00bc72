// withDeadline aborts the HTTP request itself (the server sees its connection close), it does not
// merely stop waiting; an outer signal aborts it too; a call within its deadline is untouched.
import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';
import { apiClient, withDeadline } from '../../../streams/kube-call.js';

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** A plain-HTTP server: answers /version after `delayMs` (never when undefined); tells of closed requests. */
async function serve(delayMs: number | undefined, onClosed: () => void = () => undefined): Promise<KubeConfig> {
  server = http.createServer((req, res) => {
    req.socket.once('close', onClosed);
    if (delayMs === undefined) return;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ gitVersion: 'v1.35.4' })), delayMs);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('withDeadline', () => {
  it('aborts a request the server never answers, naming what was asked', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    const kc = await serve(undefined, () => closed());
    const api = apiClient(kc, VersionApi);
    const call = withDeadline(200, 'the test server', () => api.getCode());
    await expect(call).rejects.toMatchObject({ name: 'DeadlineExceeded' });
    await expect(call).rejects.toThrow('no answer within 0.2 s (the test server)');
    await serverSawClose; // the connection was torn down, not left hanging
  });

  it('leaves a call that answers in time alone', async () => {
    const kc = await serve(10);
    const v = await withDeadline(5_000, 'the test server', () => apiClient(kc, VersionApi).getCode());
    expect(v.gitVersion).toBe('v1.35.4');
  });

  it('is aborted by the caller’s signal too, without being reported as a deadline', async () => {
    const kc = await serve(undefined);
    const ac = new AbortController();
    const call = withDeadline(5_000, 'the test server', () => apiClient(kc, VersionApi).getCode(), ac.signal);
    ac.abort();
    await expect(call).rejects.not.toMatchObject({ name: 'DeadlineExceeded' });
  });

  it('requests made outside withDeadline carry no signal of an earlier call', async () => {
    const kc = await serve(10);
    const api = apiClient(kc, VersionApi);
    await withDeadline(5_000, 'first', () => api.getCode());
    // An earlier call's deadline passing must not abort later, unrelated requests.
    await expect(api.getCode()).resolves.toMatchObject({ gitVersion: 'v1.35.4' });
  });
});
