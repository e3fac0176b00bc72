import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  dns1123LabelError,
  importLabelValue,
  isDns1123Subdomain,
  mountPathForImport,
  secretNameForImport,
  volumeNameForImport,
} from '../../src/naming.js';

const subdomain = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,300}[a-z0-9])?$/).filter(isDns1123Subdomain);

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe('naming', () => {
  it('uses an import name of at most 63 characters as its label value unchanged (Secrets already written keep matching)', () => {
    expect(importLabelValue('cluster2-default-pod-lister')).toBe('cluster2-default-pod-lister');
    expect(importLabelValue('a'.repeat(63))).toBe('a'.repeat(63));
  });

  it('gives any import name a valid label value of at most 63 characters, stable and distinct per name', () => {
    const long = `${'a.b-'.repeat(63)}z`; // 253 characters
    expect(long).toHaveLength(253);
    expect(importLabelValue(long).length).toBeLessThanOrEqual(63);
    expect(importLabelValue(long)).toBe(importLabelValue(long));
    fc.assert(
      fc.property(subdomain, subdomain, (a, b) => {
        for (const v of [importLabelValue(a), importLabelValue(b)]) {
          expect(v.length).toBeLessThanOrEqual(63);
          expect(v).toMatch(LABEL_VALUE);
        }
        if (a !== b) expect(importLabelValue(a)).not.toBe(importLabelValue(b));
      }),
    );
  });

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
        expect(dns1123LabelError(volumeNameForImport(a))).toBeUndefined();
        if (a !== b) expect(volumeNameForImport(a)).not.toBe(volumeNameForImport(b));
      }),
    );
    expect(volumeNameForImport('my.import')).toMatch(/^mcsa-my-import-[a-z0-9]{5}$/);
  });

  it('mounts imports under the contract path', () => {
    expect(mountPathForImport('x')).toBe('/var/run/secrets/admiralty.io/serviceaccountimports/x');
  });
});
