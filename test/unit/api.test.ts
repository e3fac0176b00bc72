import { describe, expect, it } from '@jest/globals';
import { decode, decodeOrThrow } from '../../src/api/decode.js';
import { API_GROUP_VERSION, IMPORT_KIND } from '../../src/constants.js';
import { ServiceAccountImport, isReady } from '../../src/api/import.js';

describe('ServiceAccountImport codec', () => {
  it('decodes a complete import', () => {
    const sai = decodeOrThrow(ServiceAccountImport, {
      apiVersion: API_GROUP_VERSION,
      kind: IMPORT_KIND,
      metadata: { name: 'a', namespace: 'ns' },
      spec: { clusterName: 'c2', namespace: 'default', name: 'sa', expirationSeconds: 900 },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'TokenIssued' }], secrets: [{ name: 'a-token-xxxxx' }] },
    }, 'import ns/a');
    expect(sai.spec.expirationSeconds).toBe(900);
    expect(isReady(sai)).toBe(true);
  });

  it('names the failing fields', () => {
    const r = decode(ServiceAccountImport, { metadata: { name: 'a' }, spec: { clusterName: 3, namespace: 'x' }, status: { conditions: [{ type: 'Ready', status: 'Maybe' }] } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual(expect.arrayContaining([
      'spec.clusterName: expected string, got 3',
      'spec.name: expected string, got missing',
      expect.stringMatching(/^status\.conditions\.0\.status: expected .*got "Maybe"$/),
    ]));
    expect(() => decodeOrThrow(ServiceAccountImport, null, 'import x/y')).toThrow(expect.objectContaining({ name: 'DecodeError', what: 'import x/y' }));
    expect(() => decodeOrThrow(ServiceAccountImport, null, 'import x/y')).toThrow(/^invalid import x\/y: /);
  });
});
