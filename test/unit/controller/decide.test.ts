import { describe, expect, it } from '@jest/globals';
import type { TokenImport } from '../../../src/api/import.js';
import { setCondition } from '../../../src/controller/conditions.js';
import { decide, localTokenTimes, refreshTime, secretWriteRefusedForGood, tokenRequestFailure } from '../../../src/controller/decide.js';
import { grantObjectName } from '../../../src/consent/grants.js';

type DecideInput = Parameters<typeof decide>[0];
/** The soonest a token is refreshed after it was issued, whatever lifetime the source claims (src/controller/decide.ts). */
const MIN_REFRESH_AFTER_MS = 60_000;

const now = new Date('2026-01-01T00:30:00Z');
const issued = new Date('2026-01-01T00:00:00Z');
const expiration = new Date('2026-01-01T01:00:00Z');
const sai: TokenImport = { metadata: { name: 'imp', namespace: 'ns' }, spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' } };
const cluster = { name: 'cluster2', server: 'https://127.0.0.1:1', caPem: 'ca', reachable: true, settled: true };
const base: DecideInput = {
  key: 'ns/imp', secretKey: 'ns/imp-token-abcde', sai, cluster, remote: { state: 'present', uid: 'u1' },
  secret: { intact: true, fingerprint: 'fp', remoteUid: 'u1', issued, expiration },
  fingerprint: 'fp', rotation: undefined, now, refreshRatio: 0.6,
  registration: false, policy: { allowed: true, expirationSeconds: 3600, audiences: [] },
};
const request = { expirationSeconds: 3600, audiences: [] };

describe('decide', () => {
  it('is ready with a refresh at about 60% of the lifetime', () => {
    const d = decide(base);
    expect(d.action).toBe('ready');
    if (d.action !== 'ready') return;
    const ratio = (d.refreshAt.getTime() - issued.getTime()) / (expiration.getTime() - issued.getTime());
    expect(ratio).toBeGreaterThanOrEqual(0.55);
    expect(ratio).toBeLessThanOrEqual(0.65);
  });

  it.each([
    ['no Secret', { secret: undefined }, 'no Secret yet'],
    ['edited Secret', { secret: { ...base.secret!, intact: false } }, 'the Secret was changed or is incomplete'],
    ['spec/server/CA change', { fingerprint: 'fp2' }, 'the spec, server, CA or grant changed'],
    ['recreated ServiceAccount', { remote: { state: 'present', uid: 'u2' } }, 'the remote ServiceAccount was recreated'],
    ['rotation requested', { rotation: 'now' }, 'rotation requested'],
    ['refresh due', { now: new Date('2026-01-01T00:50:00Z') }, 'refresh due'],
  ] as const)('mints on %s', (_n, patch, why) => {
    const input = { ...base, ...(patch as Partial<DecideInput>) };
    expect(decide(input)).toEqual({ action: 'mint', why, request, fingerprint: input.fingerprint });
  });

  it('mints when the remote ServiceAccount is not cached (TokenRequest decides)', () => {
    expect(decide({ ...base, remote: { state: 'unknown' }, secret: undefined }).action).toBe('mint');
    expect(decide({ ...base, remote: { state: 'unknown' } }).action).toBe('ready');
  });

  it('blocks with the right reason and never touches the Secret', () => {
    expect(decide({ ...base, cluster: undefined })).toMatchObject({ action: 'blocked', reason: 'ClusterNotFound', retry: 'event' });
    const down = decide({ ...base, cluster: { ...cluster, reachable: false, lastError: 'connect ECONNREFUSED' } });
    expect(down).toMatchObject({ action: 'blocked', reason: 'ClusterUnreachable', retry: 'event' });
    expect(down.action === 'blocked' && down.message).toContain('stays valid until 2026-01-01T01:00:00.000Z');
    const refused = decide({ ...base, cluster: { ...cluster, reachable: false, lastError: 'cluster2 serviceaccounts: HTTP 401: Unauthorized', lastStatusCode: 401 } });
    expect(refused).toMatchObject({ action: 'blocked', reason: 'Unauthorized', retry: 'event' });
    expect(refused.action === 'blocked' && refused.message).toMatch(/refuses the registration's credentials: .*HTTP 401.*re-run kubemcsa bootstrap.*stays valid until/);
    expect(decide({ ...base, cluster: { ...cluster, reachable: false, lastStatusCode: 503 } })).toMatchObject({ reason: 'ClusterUnreachable' });
    expect(decide({ ...base, remote: { state: 'absent' } })).toMatchObject({ action: 'blocked', reason: 'ServiceAccountNotFound' });
    const bad = decide({ ...base, sai: { ...sai, spec: { ...sai.spec, namespace: 'Not_Valid', expirationSeconds: 10 } } });
    expect(bad).toMatchObject({ action: 'blocked', reason: 'InvalidSpec', retry: 'never' });
    expect(bad.action === 'blocked' && bad.message).toMatch(/spec\.namespace must consist.*spec\.expirationSeconds must be an integer from 600 to 604800 \(is 10\)/);
  });

  it('caps the refresh interval when asked', () => {
    const at = refreshTime('k', issued, expiration, 0.6, 5_000);
    expect(at.getTime() - issued.getTime()).toBe(5_000);
  });

  it('never refreshes sooner than the floor, whatever lifetime a source claims', () => {
    for (const lifetimeMs of [-3_600_000, 0, 1, 30_000]) {
      const at = refreshTime('k', issued, new Date(issued.getTime() + lifetimeMs), 0.6);
      expect(at.getTime() - issued.getTime()).toBe(MIN_REFRESH_AFTER_MS);
    }
  });

  it('takes token times from the local receive time and the source-granted duration', () => {
    const received = new Date('2026-01-01T12:00:00Z');
    // The source's clock is two hours behind: iat and expiry are in the local past, the granted duration is 1 h.
    const skewed = localTokenTimes(received, new Date('2026-01-01T10:00:00Z'), new Date('2026-01-01T11:00:00Z'), 3600);
    expect(skewed).toEqual({ issued: received, expiration: new Date('2026-01-01T13:00:00Z') });
    // A source that grants less than asked: the shorter lifetime; one claiming more: the asked one.
    expect(localTokenTimes(received, new Date(0), new Date(600_000), 3600).expiration).toEqual(new Date('2026-01-01T12:10:00Z'));
    expect(localTokenTimes(received, new Date(0), new Date(86_400_000), 3600).expiration).toEqual(new Date('2026-01-01T13:00:00Z'));
    // No iat, or nonsense: the requested lifetime.
    expect(localTokenTimes(received, undefined, new Date(0), 3600).expiration).toEqual(new Date('2026-01-01T13:00:00Z'));
    expect(localTokenTimes(received, new Date(5_000), new Date(0), 3600).expiration).toEqual(new Date('2026-01-01T13:00:00Z'));
    // A token with a skewed clock is not refreshed at once.
    const d = decide({ ...base, now: new Date(received.getTime() + 1000), secret: { ...base.secret!, ...skewed } });
    expect(d.action).toBe('ready');
  });
});

describe('decide: consent', () => {
  const consent = (grants: Array<{ namespace: string; serviceAccount: string; anchorUid?: string }> | undefined) => ({ importer: 'cluster1', grants });
  const withGrants = (grants: Array<{ namespace: string; serviceAccount: string; anchorUid?: string }> | undefined): Partial<DecideInput> => ({ cluster: { ...cluster, consent: consent(grants) } });

  it('refuses what the target policy refuses before anything else about the source', () => {
    const d = decide({ ...base, cluster: undefined, policy: { allowed: false, message: 'nope: kube-system is never importable' } });
    expect(d).toMatchObject({ action: 'blocked', reason: 'Forbidden', message: 'nope: kube-system is never importable', retry: 'event' });
  });

  it('waits, writing nothing, until the policies are listed, the cluster answered and its grants are known', () => {
    expect(decide({ ...base, policy: undefined })).toMatchObject({ action: 'wait' });
    expect(decide({ ...base, cluster: { ...cluster, settled: false } })).toMatchObject({ action: 'wait' });
    expect(decide({ ...base, ...withGrants(undefined) })).toMatchObject({ action: 'wait' });
  });

  it('refuses a ServiceAccount the source did not grant, naming the command that grants it', () => {
    const d = decide({ ...base, ...withGrants([{ namespace: 'default', serviceAccount: 'other' }, { namespace: 'ns2', serviceAccount: '*' }]) });
    expect(d).toMatchObject({ action: 'blocked', reason: 'Forbidden', retry: 'event' });
    expect(d.action === 'blocked' && d.message).toContain('kubemcsa grant pod-lister -n default --target-name cluster1');
  });

  it('binds the token to the narrowest grant covering it', () => {
    const sa = { namespace: 'default', serviceAccount: 'pod-lister' };
    const ns = { namespace: 'default', serviceAccount: '*' };
    const one = decide({ ...base, secret: undefined, ...withGrants([ns, sa]) });
    expect(one).toMatchObject({ action: 'mint', request: { ...request, boundSecret: grantObjectName('cluster1', sa) } });
    const whole = decide({ ...base, secret: undefined, ...withGrants([ns]) });
    expect(whole).toMatchObject({ action: 'mint', request: { ...request, boundSecret: grantObjectName('cluster1', ns) } });
    const wide = decide({ ...base, secret: undefined, ...withGrants([{ namespace: '*', serviceAccount: '*' }]) });
    expect(wide).toMatchObject({ action: 'mint', request });
    expect(wide.action === 'mint' && wide.request.boundSecret).toBeUndefined();
    // A token minted under another grant is replaced when the covering grant changes.
    const fp = one.action === 'mint' ? one.fingerprint : '';
    expect(fp).not.toBe(whole.action === 'mint' ? whole.fingerprint : '');
    expect(decide({ ...base, secret: { ...base.secret!, fingerprint: fp }, ...withGrants([ns]) })).toMatchObject({ action: 'mint', why: 'the spec, server, CA or grant changed' });
    expect(decide({ ...base, secret: { ...base.secret!, fingerprint: fp }, ...withGrants([ns, sa]) })).toMatchObject({ action: 'ready' });
    // Revoked and granted again: a new anchor, so tokens bound to the old one are replaced.
    const again = decide({ ...base, secret: { ...base.secret!, fingerprint: fp }, ...withGrants([{ ...sa, anchorUid: 'a-new-uid' }]) });
    expect(again).toMatchObject({ action: 'mint', why: 'the spec, server, CA or grant changed', request: { boundSecret: grantObjectName('cluster1', sa), boundSecretUid: 'a-new-uid' } });
  });

  it('a cluster-wide grant never covers kube-system or the install namespace', () => {
    const ks = { ...sai, spec: { ...sai.spec, namespace: 'kube-system' } };
    expect(decide({ ...base, sai: ks, secret: undefined, ...withGrants([{ namespace: '*', serviceAccount: '*' }]) })).toMatchObject({ action: 'blocked', reason: 'Forbidden' });
  });

  it('asks for the lifetime and audiences the policy settled on', () => {
    const d = decide({ ...base, secret: undefined, policy: { allowed: true, expirationSeconds: 900, audiences: ['vault'] } });
    expect(d).toMatchObject({ action: 'mint', request: { expirationSeconds: 900, audiences: ['vault'] } });
  });

  it('says when a registration token expired, with the command that restores it', () => {
    const past = { ...base.secret!, expiration: new Date('2026-01-01T00:10:00Z') };
    const reg = decide({ ...base, registration: true, secret: past, cluster: { ...cluster, reachable: false, lastStatusCode: 401 } });
    expect(reg).toMatchObject({ action: 'blocked', reason: 'TokenExpired' });
    expect(reg.action === 'blocked' && reg.message).toContain('kubemcsa bootstrap --target-context <context of this cluster> --target-name pod-lister --source-context <context of cluster2> --source-name cluster2');
    const tenant = decide({ ...base, cluster: { ...cluster, reachable: false, lastStatusCode: 401, credentialExpiration: new Date('2026-01-01T00:10:00Z') } });
    expect(tenant).toMatchObject({ action: 'blocked', reason: 'TokenExpired' });
    expect(tenant.action === 'blocked' && tenant.message).toContain("registration's token expired at 2026-01-01T00:10:00.000Z");
  });

  it('never overwrites a Secret another object controls, before looking at anything else', () => {
    const d = decide({ ...base, secret: { ...base.secret!, foreign: true, intact: false }, cluster: undefined, policy: undefined });
    expect(d).toEqual({ action: 'blocked', reason: 'SecretConflict', message: 'Secret ns/imp-token-abcde exists and is controlled by another object; delete or rename it', retry: 'event' });
    // An invalid spec is still reported first.
    expect(decide({ ...base, sai: { ...sai, spec: { ...sai.spec, name: 'Bad_Name' } }, secret: { ...base.secret!, foreign: true } })).toMatchObject({ reason: 'InvalidSpec' });
  });

  it("waits, never mints, while the registry still serves another endpoint than the registration's Secret names", () => {
    // kubemcsa bootstrap re-pointed the registration: the Secret names the new server, the
    // registry has not rebuilt the cluster yet. Minting would write the old server back.
    const repointed = { ...base.secret!, fingerprint: 'fp-new', endpoint: { server: 'https://127.0.0.1:2', caPem: 'ca' } };
    const d = decide({ ...base, registration: true, secret: repointed });
    expect(d).toMatchObject({ action: 'wait', why: expect.stringContaining('not yet re-pointed') });
    expect(decide({ ...base, registration: true, secret: { ...repointed, endpoint: { server: cluster.server, caPem: 'other ca' } } }).action).toBe('wait');
    // Once the registry follows, the Secret's endpoint is the cluster's: an ordinary decision.
    expect(decide({ ...base, registration: true, secret: { ...repointed, endpoint: { server: cluster.server, caPem: 'ca\n' } } }).action).toBe('mint');
    // A tenant's import carries no endpoint of its own; a stale namesake's Secret is replaced.
    expect(decide({ ...base, secret: repointed }).action).toBe('mint');
    expect(decide({ ...base, registration: true, secret: { ...repointed, intact: false } })).toMatchObject({ action: 'mint', why: 'the Secret was changed or is incomplete' });
  });
});

describe('tokenRequestFailure', () => {
  const bound = { expirationSeconds: 3600, audiences: [], boundSecret: 'mcsa-grant.c1.sa.abc', boundSecretUid: 'u-anchor' };
  it.each([
    [404, 'secrets', bound, 'Forbidden', 'event', /anchor Secret mcsa-grant\.c1\.sa\.abc is missing in the source/],
    [404, 'secrets', request, 'ServiceAccountNotFound', 'event', undefined],
    [404, 'serviceaccounts', bound, 'ServiceAccountNotFound', 'event', undefined],
    [409, undefined, bound, 'Forbidden', 'event', /is not the one the grant recorded/],
    [409, undefined, request, 'ClusterUnreachable', 'backoff', undefined],
    [403, undefined, request, 'Forbidden', 'backoff', undefined],
    [401, undefined, request, 'Unauthorized', 'backoff', undefined],
    [400, undefined, request, 'TokenRequestFailed', 'backoff', undefined],
    [422, undefined, request, 'TokenRequestFailed', 'backoff', undefined],
    [500, undefined, request, 'ClusterUnreachable', 'backoff', undefined],
    [undefined, undefined, request, 'ClusterUnreachable', 'backoff', undefined],
  ] as const)('maps HTTP %s (%s) to its reason', (status, kind, plan, reason, retry, hint) => {
    const f = tokenRequestFailure(status, kind, plan);
    expect(f).toMatchObject({ reason, retry });
    if (hint) expect(f.hint).toMatch(hint);
    else expect(f.hint).toBeUndefined();
  });

  it('treats only 400 and 422 Secret write refusals as permanent', () => {
    expect([400, 401, 403, 404, 409, 422, 429, 500, undefined].filter(secretWriteRefusedForGood)).toEqual([400, 422]);
  });
});

describe('setCondition', () => {
  it('keeps lastTransitionTime while the status holds', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:10:00Z');
    const a = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'ClusterNotFound' }, t1);
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'ServiceAccountNotFound' }, t2);
    expect(b).toEqual([{ type: 'Ready', status: 'False', reason: 'ServiceAccountNotFound', lastTransitionTime: '2026-01-01T00:00:00Z' }]);
    const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'TokenIssued' }, t2);
    expect(c[0]!.lastTransitionTime).toBe('2026-01-01T00:10:00Z');
  });
});
