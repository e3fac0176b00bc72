import { describe, expect, it } from '@jest/globals';
import { mintDecision, readyAndCurrent, type ExistingSecret } from '../../../src/bootstrap/mint.js';
import { SecretAnnotations } from '../../../src/secret.js';
import { DEFAULT_REFRESH_RATIO, refreshTime } from '../../../src/controller/decide.js';

const want = { key: 'multicluster-service-account/cluster2', fingerprint: 'fp', importUid: 'import-uid', remoteUid: 'sa-uid' };
const issued = new Date('2026-01-01T00:00:00Z');
const expiration = new Date('2026-01-01T01:00:00Z');
const good: ExistingSecret = {
  annotations: {
    [SecretAnnotations.fingerprint]: 'fp',
    [SecretAnnotations.remoteUid]: 'sa-uid',
    [SecretAnnotations.issued]: issued.toISOString(),
    [SecretAnnotations.expiration]: expiration.toISOString(),
  },
  dataKeys: ['ca.crt', 'config', 'namespace', 'server', 'token'],
  ownerUids: ['import-uid'],
};
const at = (minutes: number) => new Date(issued.getTime() + minutes * 60_000);
const withAnnotation = (k: string, v: string | undefined): ExistingSecret => {
  const annotations = { ...good.annotations };
  if (v === undefined) delete annotations[k];
  else annotations[k] = v;
  return { ...good, annotations };
};

describe('mint decision', () => {
  it('keeps a good token (a re-run changes nothing)', () => {
    expect(mintDecision(good, want, at(10))).toEqual({ mint: false });
    expect(mintDecision(good, want, at(32))).toEqual({ mint: false });
  });

  it('mints when the Secret is missing or incomplete', () => {
    expect(mintDecision(undefined, want, at(1))).toMatchObject({ mint: true, reason: expect.stringMatching(/does not exist/) });
    expect(mintDecision({ ...good, dataKeys: ['token'] }, want, at(1))).toMatchObject({ mint: true, reason: expect.stringMatching(/lacks/) });
  });

  it('mints within the last third of the lifetime, or after expiry', () => {
    // The controller's rule: refresh at 60 % ± 5 % of the lifetime (minute 33 to 39 of 60).
    expect(mintDecision(good, want, at(40))).toMatchObject({ mint: true, reason: 'the token is due for refresh' });
    const due = refreshTime(want.key, issued, expiration, DEFAULT_REFRESH_RATIO);
    expect(mintDecision(good, want, new Date(due.getTime() - 1))).toEqual({ mint: false });
    expect(mintDecision(good, want, due)).toMatchObject({ mint: true });
    expect(mintDecision(good, want, at(61))).toMatchObject({ mint: true, reason: 'the token has expired' });
  });

  it('mints when the fingerprint, owner or importer ServiceAccount differ', () => {
    expect(mintDecision(withAnnotation(SecretAnnotations.fingerprint, 'other'), want, at(1))).toMatchObject({ mint: true });
    expect(mintDecision({ ...good, ownerUids: ['old-import'] }, want, at(1))).toMatchObject({ mint: true });
    expect(mintDecision(withAnnotation(SecretAnnotations.remoteUid, 'old-sa'), want, at(1))).toMatchObject({
      mint: true,
      reason: expect.stringMatching(/recreated/),
    });
  });

  it('mints when the expiry annotations are missing or nonsense', () => {
    expect(mintDecision(withAnnotation(SecretAnnotations.expiration, undefined), want, at(1))).toMatchObject({ mint: true });
    expect(mintDecision(withAnnotation(SecretAnnotations.issued, 'yesterday'), want, at(1))).toMatchObject({ mint: true });
  });
});

describe('readyAndCurrent (bootstrap --wait)', () => {
  const ready = (extra: { observedGeneration?: number; expirationTimestamp?: string } = {}) => ({
    metadata: { generation: 2 },
    status: {
      conditions: [{ type: 'Ready', status: 'True' as const, reason: 'TokenIssued', ...(extra.observedGeneration !== undefined ? { observedGeneration: extra.observedGeneration } : {}) }],
      ...(extra.expirationTimestamp ? { expirationTimestamp: extra.expirationTimestamp } : {}),
    },
  });

  it('needs Ready=True for the current generation', () => {
    expect(readyAndCurrent(ready({ observedGeneration: 2 }), undefined)).toBe(true);
    expect(readyAndCurrent(ready({ observedGeneration: 1 }), undefined)).toBe(false);
    expect(readyAndCurrent({ metadata: {}, status: { conditions: [{ type: 'Ready', status: 'False' }] } }, undefined)).toBe(false);
    expect(readyAndCurrent({ metadata: {} }, undefined)).toBe(false);
  });

  it('after a new token, needs a status describing that token or a newer one', () => {
    const minted = new Date('2026-01-01T01:00:00.400Z');
    expect(readyAndCurrent(ready({ expirationTimestamp: '2026-01-01T00:30:00Z' }), minted)).toBe(false);
    expect(readyAndCurrent(ready(), minted)).toBe(false);
    expect(readyAndCurrent(ready({ expirationTimestamp: '2026-01-01T01:00:00Z' }), minted)).toBe(true);
    expect(readyAndCurrent(ready({ expirationTimestamp: '2026-01-01T01:10:00Z' }), minted)).toBe(true);
  });
});
