import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { anchorFor, coveringGrant, grantAnnotationKey, grantAnnotationValue, grantObjectName, parseGrants, type Grant } from '../../../src/consent/grants.js';
import { isDns1123Subdomain } from '../../../src/naming.js';

const record = (...gs: Grant[]) => Object.fromEntries(gs.map((g) => [grantAnnotationKey(g), grantAnnotationValue(g)]));

describe('grants', () => {
  it('round-trips the records on the importer and ignores anything else', () => {
    const gs: Grant[] = [{ namespace: 'default', serviceAccount: 'pod-lister', anchorUid: '0b6a7c1e-1111-4222-8333-944445555666' }, { namespace: 'team-a', serviceAccount: '*' }, { namespace: '*', serviceAccount: '*' }];
    expect(parseGrants({ ...record(...gs), 'other.io/x': 'default/admin' })).toEqual(gs);
  });

  it('never widens a malformed or misplaced record', () => {
    const key = grantAnnotationKey({ namespace: 'default', serviceAccount: 'a' });
    expect(parseGrants({ [key]: 'default/b' })).toEqual([]); // value under another grant's key
    expect(parseGrants({ [grantAnnotationKey({ namespace: '*', serviceAccount: 'x' })]: '*/x' })).toEqual([]);
    expect(parseGrants({ [grantAnnotationKey({ namespace: 'a', serviceAccount: 'b/c' })]: 'a/b/c' })).toEqual([]);
    expect(parseGrants({ [grantAnnotationKey({ namespace: 'A', serviceAccount: 'b' })]: 'A/b' })).toEqual([]);
    expect(parseGrants({ [key]: 'default/a@not a uid' })).toEqual([]);
    expect(parseGrants({ [key]: 'default/a@1@2' })).toEqual([]);
  });

  it('picks the narrowest grant, and keeps kube-system and the install namespace out of cluster-wide ones', () => {
    const sa = { namespace: 'ns', serviceAccount: 'x' };
    const ns = { namespace: 'ns', serviceAccount: '*' };
    const all = { namespace: '*', serviceAccount: '*' };
    expect(coveringGrant([all, ns, sa], 'ns', 'x')).toEqual(sa);
    expect(coveringGrant([all, ns], 'ns', 'x')).toEqual(ns);
    expect(coveringGrant([all], 'other', 'x')).toEqual(all);
    expect(coveringGrant([all], 'kube-system', 'x')).toBeUndefined();
    expect(coveringGrant([all], 'multicluster-service-account', 'x')).toBeUndefined();
    expect(coveringGrant([{ namespace: 'kube-system', serviceAccount: 'x' }], 'kube-system', 'x')).toBeDefined(); // the target's policy refuses it
    expect(anchorFor('t', all)).toBeUndefined();
    expect(anchorFor('t', sa)).toEqual({ namespace: 'ns', name: grantObjectName('t', sa) });
  });

  it('names grant objects validly, uniquely and within 253 characters', () => {
    const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,250}[a-z0-9])?$/).filter(isDns1123Subdomain);
    fc.assert(
      fc.property(name, name, name, (t, a, b) => {
        const x = grantObjectName(t, { namespace: 'ns', serviceAccount: a });
        expect(x.length).toBeLessThanOrEqual(253);
        expect(isDns1123Subdomain(x)).toBe(true);
        if (a !== b) expect(x).not.toBe(grantObjectName(t, { namespace: 'ns', serviceAccount: b }));
      }),
      { numRuns: 300 },
    );
    // Separators inside names cannot make two grants collide.
    expect(grantObjectName('a-b', { namespace: 'n', serviceAccount: 'c' })).not.toBe(grantObjectName('a', { namespace: 'n', serviceAccount: 'b-c' }));
  });
});
