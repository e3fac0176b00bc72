// The one TokenRequest of the controller and kubemcsa: the request it sends and the answer it accepts.
import { describe, expect, it } from '@jest/globals';
import type { CoreV1Api } from '@kubernetes/client-node';
import { requestToken } from '../../../streams/token-request.js';

function api(answer: unknown) {
  const sent: unknown[] = [];
  const core = { createNamespacedServiceAccountToken: (req: unknown) => (sent.push(req), Promise.resolve(answer)) } as unknown as CoreV1Api;
  return { core, sent };
}

describe('requestToken', () => {
  it('asks for the lifetime and audiences, bound to the anchor Secret and its UID when given', async () => {
    const { core, sent } = api({ status: { token: 'tok', expirationTimestamp: new Date('2026-01-01T01:00:00Z') } });
    const r = await requestToken(core, 'team', 'sa', { expirationSeconds: 900, audiences: ['vault'], boundSecret: 'mcsa-grant.c1.sa.x', boundSecretUid: 'u1' }, 'cluster "c2"');
    expect(r).toEqual({ token: 'tok', expirationTimestamp: new Date('2026-01-01T01:00:00Z') });
    expect(sent).toEqual([
      { namespace: 'team', name: 'sa', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 900, audiences: ['vault'], boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: 'mcsa-grant.c1.sa.x', uid: 'u1' } } } },
    ]);
  });

  it('sends no boundObjectRef without an anchor, and accepts an RFC 3339 expiry', async () => {
    const { core, sent } = api({ status: { token: 'tok', expirationTimestamp: '2026-01-01T01:00:00Z' } });
    expect((await requestToken(core, 'ns', 'sa', { expirationSeconds: 3600, audiences: [] }, 'cluster "c2"')).expirationTimestamp).toEqual(new Date('2026-01-01T01:00:00Z'));
    expect(sent).toEqual([{ namespace: 'ns', name: 'sa', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600, audiences: [] } } }]);
  });

  it.each([
    ['no status', {}],
    ['no token', { status: { expirationTimestamp: '2026-01-01T01:00:00Z' } }],
    ['a bad expiry', { status: { token: 'tok', expirationTimestamp: 'soon' } }],
  ])('refuses an answer with %s, naming the ServiceAccount and cluster and never the token', async (_n, answer) => {
    const { core } = api(answer);
    const err = await requestToken(core, 'ns', 'sa', { expirationSeconds: 3600, audiences: [] }, 'cluster "c2"').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('TokenRequest for ServiceAccount ns/sa in cluster "c2"');
    expect((err as Error).message).not.toContain('tok"');
  });
});
