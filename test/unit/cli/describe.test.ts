import { describe, expect, it } from '@jest/globals';
import { describeError, importRow, importsTable } from '../../../src/bootstrap/describe.js';

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

  it('tables imports kubectl-style, with padded columns and expiry relative to now', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const row = (name: string, expires: string) => ({ namespace: 'ns', name, cluster: 'c2', remote: 'default/sa', ready: 'True', reason: 'TokenIssued', message: '', expires });
    const rows = [
      row('a', '2026-01-01T00:00:30Z'),
      row('b', '2026-01-01T00:42:00Z'),
      row('c', '2026-01-01T03:05:00Z'),
      row('a-longer-name', '2025-12-31T23:55:00Z'),
      row('e', ''),
    ];
    expect(importsTable(rows, now).split('\n')).toEqual([
      'NAMESPACE   NAME            CLUSTER   REMOTE       READY   REASON        EXPIRES',
      'ns          a               c2        default/sa   True    TokenIssued   in 30s',
      'ns          b               c2        default/sa   True    TokenIssued   in 42m',
      'ns          c               c2        default/sa   True    TokenIssued   in 3h5m',
      'ns          a-longer-name   c2        default/sa   True    TokenIssued   5m ago',
      'ns          e               c2        default/sa   True    TokenIssued   -',
      '',
    ]);
    expect(importsTable([], now)).toBe('No ServiceAccountImports.\n');
  });
});
