// A source or target API server that accepts connections and never answers must not hang
// kubemcsa: every call has a deadline and fails naming the call, the cluster and the server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterClient } from '../../../cli/lib/cluster.js';
import { CliError } from '../../../src/bootstrap/errors.js';

let server: net.Server;
const sockets = new Set<net.Socket>();
let url = '';

beforeAll(async () => {
  // Takes the TCP connection, then says nothing (no TLS handshake, no HTTP).
  server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

function client(callTimeoutMs: number): ClusterClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'hung', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'not-a-real-token' }],
    contexts: [{ name: 'hung', cluster: 'hung', user: 'u' }],
    currentContext: 'hung',
  });
  return new ClusterClient('target', 'hung', { kc, contextName: 'hung', clusterName: 'hung', server: url, skipTLSVerify: true, namespace: 'default', origin: 'test' }, { callTimeoutMs });
}

describe('ClusterClient call deadline', () => {
  it('fails a call the server never answers, naming the call, the cluster and the server', async () => {
    const started = Date.now();
    const err = await client(300).read({ apiVersion: 'v1', kind: 'Secret', namespace: 'ns', name: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toMatch(/^cannot read Secret ns\/x in target cluster hung \(context hung\): .*no answer within 0\.3 s \(https:\/\/127\.0\.0\.1:\d+\)/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('fails a permission check the server never answers', async () => {
    const err = await client(300).missingPermissions([{ verb: 'create', group: '', resource: 'secrets', namespace: 'ns' }]).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^cannot check whether .* is allowed in target cluster hung \(context hung\): .*no answer within 0\.3 s/);
  });
});
