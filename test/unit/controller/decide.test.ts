import { describe, expect, it } from '@jest/globals';
import { newImport, type ServiceAccountImport } from '../../../src/api/import.js';
import { setCondition } from '../../../src/controller/conditions.js';
import { decide, refreshTime, type DecideInput } from '../../../src/controller/decide.js';

const now = new Date('2026-01-01T00:30:00Z');
const issued = new Date('2026-01-01T00:00:00Z');
const expiration = new Date('2026-01-01T01:00:00Z');
const sai = newImport({ name: 'imp', namespace: 'ns', clusterName: 'cluster2', remoteNamespace: 'default', remoteName: 'pod-lister' }) as ServiceAccountImport;
const cluster = { name: 'cluster2', server: 'https://127.0.0.1:1', caPem: 'ca', reachable: true };
const base: DecideInput = {
  key: 'ns/imp', sai, cluster, remote: { state: 'present', uid: 'u1' },
  secret: { intact: true, fingerprint: 'fp', remoteUid: 'u1', issued, expiration },
  fingerprint: 'fp', rotation: undefined, now, refreshRatio: 0.6,
};

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
    ['spec/server/CA change', { fingerprint: 'fp2' }, 'the spec, server or CA changed'],
    ['recreated ServiceAccount', { remote: { state: 'present', uid: 'u2' } }, 'the remote ServiceAccount was recreated'],
    ['rotation requested', { rotation: 'now' }, 'rotation requested'],
    ['refresh due', { now: new Date('2026-01-01T00:50:00Z') }, 'refresh due'],
  ] as const)('mints on %s', (_n, patch, why) => {
    expect(decide({ ...base, ...(patch as Partial<DecideInput>) })).toEqual({ action: 'mint', why });
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
    expect(bad.action === 'blocked' && bad.message).toMatch(/spec\.namespace must consist.*spec\.expirationSeconds must be an integer of at least 600 \(is 10\)/);
  });

  it('caps the refresh interval when asked', () => {
    const at = refreshTime('k', issued, expiration, 0.6, 5_000);
    expect(at.getTime() - issued.getTime()).toBe(5_000);
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
