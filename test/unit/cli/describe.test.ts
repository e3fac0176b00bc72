import { describe, expect, it } from '@jest/globals';
import { describeError, formatTable, importRow, relativeTime } from '../../../src/bootstrap/describe.js';

describe('describeError', () => {
  it('uses the API Status message of client-node errors', () => {
    const e = Object.assign(new Error('HTTP-Code: 404\nMessage: …\nBody: …'), {
      code: 404,
      body: JSON.stringify({ kind: 'Status', message: 'serviceaccounts "x" not found', reason: 'NotFound', code: 404 }),
    });
    expect(describeError(e)).toBe('not found: serviceaccounts "x" not found');
    expect(describeError(Object.assign(new Error('x'), { code: 403, body: '' }))).toBe('forbidden (HTTP 403)');
  });

  it('names the network cause of a failed fetch', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1234'), { code: 'ECONNREFUSED' });
    expect(describeError(new TypeError('fetch failed', { cause }))).toBe('connect ECONNREFUSED 127.0.0.1:1234');
    const tls = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(describeError(new TypeError('fetch failed', { cause: tls }))).toBe('SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain');
  });

  it('is one line without tokens', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const text = describeError(new Error(`line one\n  line two ${jwt}`));
    expect(text).not.toContain('\n');
    expect(text).not.toContain(jwt);
  });
});

describe('status rows', () => {
  const sai = {
    metadata: { name: 'cluster2', namespace: 'multicluster-service-account' },
    spec: { clusterName: 'cluster2', namespace: 'multicluster-service-account', name: 'cluster1' },
    status: {
      conditions: [{ type: 'Ready', status: 'False' as const, reason: 'ClusterUnreachable', message: 'dial tcp: refused' }],
      expirationTimestamp: '2026-01-01T01:00:00Z',
    },
  };

  it('reads Ready, reason, message and expiry', () => {
    expect(importRow(sai)).toEqual({
      namespace: 'multicluster-service-account',
      name: 'cluster2',
      cluster: 'cluster2',
      remote: 'multicluster-service-account/cluster1',
      ready: 'False',
      reason: 'ClusterUnreachable',
      message: 'dial tcp: refused',
      expires: '2026-01-01T01:00:00Z',
    });
    expect(importRow({ metadata: { name: 'x' }, spec: sai.spec })).toMatchObject({ ready: 'Unknown', reason: 'NotReconciled' });
  });

  it('formats relative times and tables', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(relativeTime('2026-01-01T00:00:30Z', now)).toBe('in 30s');
    expect(relativeTime('2026-01-01T00:42:00Z', now)).toBe('in 42m');
    expect(relativeTime('2026-01-01T03:05:00Z', now)).toBe('in 3h5m');
    expect(relativeTime('2025-12-31T23:55:00Z', now)).toBe('5m ago');
    expect(relativeTime('', now)).toBe('-');
    expect(formatTable(['A', 'LONGER'], [['x', 'y'], ['wide', 'z']])).toBe('A      LONGER\nx      y\nwide   z\n');
  });
});
