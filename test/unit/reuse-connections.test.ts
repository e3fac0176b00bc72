import { describe, expect, it } from '@jest/globals';
import { KubeConfig, RequestContext, HttpMethod } from '@kubernetes/client-node';
import { reuseConnections } from '../../src/kube/reuse-connections.js';

const CA = Buffer.from('not a real CA; never used for a connection').toString('base64');

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'a', server: 'https://127.0.0.1:1', caData: CA, skipTLSVerify: false }, { name: 'b', server: 'https://127.0.0.1:2', caData: CA, skipTLSVerify: false }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'a', cluster: 'a', user: 'u' }, { name: 'b', cluster: 'b', user: 'u' }],
    currentContext: 'a',
  });
  return kc;
}

async function dispatcherOf(kc: KubeConfig): Promise<unknown> {
  const ctx = new RequestContext('https://127.0.0.1:1/api', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

describe('reuseConnections', () => {
  it('shows the problem: client-node makes a new dispatcher per request', async () => {
    const kc = kubeConfig();
    expect(await dispatcherOf(kc)).not.toBe(await dispatcherOf(kc));
  });

  it('reuses one dispatcher per cluster and user, and keeps auth per request', async () => {
    const kc = reuseConnections(reuseConnections(kubeConfig()));
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).toBe(first);
    kc.setCurrentContext('b');
    expect(await dispatcherOf(kc)).not.toBe(first);
    const ctx = new RequestContext('https://127.0.0.1:2/api', HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    expect(ctx.getHeaders().Authorization).toBe('Bearer t');
  });
});
