import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  isDns1123Label,
  isDns1123Subdomain,
  mountPathForImport,
  secretNameForImport,
  volumeNameForImport,
} from '../../src/naming.js';

const subdomain = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,300}[a-z0-9])?$/).filter(isDns1123Subdomain);

describe('naming', () => {
  it('derives the Secret name from the import name alone', () => {
    expect(secretNameForImport('cluster2-default-pod-lister')).toMatch(/^cluster2-default-pod-lister-token-[a-z0-9]{5}$/);
    expect(secretNameForImport('a')).toBe(secretNameForImport('a'));
    expect(secretNameForImport('a')).not.toBe(secretNameForImport('b'));
  });

  it('keeps Secret names valid subdomains of at most 253 characters', () => {
    fc.assert(
      fc.property(subdomain, (name) => {
        const s = secretNameForImport(name);
        expect(isDns1123Subdomain(s)).toBe(true);
      }),
    );
    const long = `${'a'.repeat(240)}.-b`.replace('.-', '.c');
    expect(secretNameForImport(long).length).toBeLessThanOrEqual(253);
  });

  it('gives every import a distinct DNS-1123 label as volume name', () => {
    fc.assert(
      fc.property(subdomain, subdomain, (a, b) => {
        expect(isDns1123Label(volumeNameForImport(a))).toBe(true);
        if (a !== b) expect(volumeNameForImport(a)).not.toBe(volumeNameForImport(b));
      }),
    );
    expect(volumeNameForImport('my.import')).toMatch(/^mcsa-my-import-[a-z0-9]{5}$/);
  });

  it('mounts imports under the contract path', () => {
    expect(mountPathForImport('x')).toBe('/var/run/secrets/admiralty.io/serviceaccountimports/x');
  });
});
