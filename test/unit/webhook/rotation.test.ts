import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { applyRotationStep, caBundle, issuerOf, nextRotationStep, type RotationPolicy, type StoredTls } from '../../../src/tls/rotation.js';
import { issuedBy, pemBlocks, subjectAltNames } from '../../../src/tls/serving.js';

const policy: RotationPolicy = {
  caValidityMs: 30_000,
  certValidityMs: 9_000,
  propagationDelayMs: 2_000,
  dnsNames: ['svc', 'svc.ns', 'svc.ns.svc', 'svc.ns.svc.cluster.local'],
  ipAddresses: ['127.0.0.1'],
};

/** The SHA-256 fingerprints of the certificates in a PEM bundle. */
const fingerprints = (bundlePem: string) => pemBlocks(bundlePem).map((b) => new X509Certificate(b).fingerprint256);

describe('self-managed TLS rotation plan', () => {
  it('goes create → renew → CA rollover (old CA kept, leaf switched only once the new CA is published) → drop old CA', async () => {
    const t0 = Date.now();
    const step = (s: StoredTls | undefined, dt: number, publishedAt?: number) => nextRotationStep(s, t0 + dt, publishedAt === undefined ? undefined : t0 + publishedAt, policy);
    const apply = async (s: StoredTls | undefined, dt: number, publishedAt?: number) => {
      const st = step(s, dt, publishedAt);
      return { kind: st.kind, next: (await applyRotationStep(st, s, t0 + dt, policy)) ?? s! };
    };

    expect(step(undefined, 0).kind).toBe('create');
    let s = (await apply(undefined, 0)).next;
    expect(issuedBy(s.tlsCertPem, s.caCertPem)).toBe(true);
    expect(subjectAltNames(s.tlsCertPem)).toEqual({ dns: policy.dnsNames, ip: ['127.0.0.1'] });
    expect(step(s, 1000, 500)).toEqual({ kind: 'none' });

    // The serving certificate is renewed in its last third.
    const r1 = await apply(s, 7000, 500);
    expect(r1.kind).toBe('issue-certificate');
    expect(r1.next.tlsCertPem).not.toBe(s.tlsCertPem);
    s = r1.next;

    s = (await apply(s, 14_000, 500)).next;

    // CA in its last third: new CA, old one kept for the bundle, serving certificate renewed from the old CA.
    const r2 = await apply(s, 21_000, 500);
    expect(r2.kind).toBe('rotate-ca');
    expect(r2.next.previousCaPem).toBe(s.caCertPem);
    expect(r2.next.tlsCertPem).not.toBe(s.tlsCertPem);
    expect(issuedBy(r2.next.tlsCertPem, s.caCertPem)).toBe(true);
    expect(pemBlocks(caBundle(r2.next))).toHaveLength(2);
    expect(fingerprints(caBundle(r2.next))).toContain(new X509Certificate(s.caCertPem).fingerprint256);
    s = r2.next;

    // Not yet published (or not long enough): keep serving the old-CA certificate.
    expect(step(s, 21_500)).toEqual({ kind: 'none', waiting: 'new CA not yet published long enough' });
    expect(step(s, 22_000, 21_000).kind).toBe('none');
    const r3 = await apply(s, 23_100, 21_000);
    expect(r3.kind).toBe('issue-certificate');
    expect(issuedBy(r3.next.tlsCertPem, r3.next.caCertPem)).toBe(true);
    s = r3.next;

    // The old CA leaves the bundle once it has expired.
    expect(step(s, 31_000, 21_000).kind).toBe('drop-previous-ca');
    s = (await apply(s, 31_000, 21_000)).next;
    expect(s.previousCaPem).toBeUndefined();
  });

  it('after the material is lost, keeps the published CAs in the new bundle until every replica can have switched', async () => {
    const t0 = Date.now();
    const old = (await applyRotationStep({ kind: 'create', reason: '' }, undefined, t0, policy))!;
    const published = caBundle(old) + 'not a certificate\n';
    const fresh = (await applyRotationStep({ kind: 'create', reason: 'no TLS material stored yet' }, undefined, t0 + 1000, policy, published))!;
    expect(fresh.caCertPem).not.toBe(old.caCertPem);
    expect(issuerOf(fresh.tlsCertPem, caBundle(fresh))).toBe(fresh.caCertPem);
    expect(pemBlocks(caBundle(fresh))).toEqual([fresh.caCertPem, old.caCertPem]);
    // Expired CAs are not kept: material lost once the old CA has expired starts a bundle of its own.
    const later = (await applyRotationStep({ kind: 'create', reason: 'no TLS material stored yet' }, undefined, t0 + 60_000, policy, published))!;
    expect(pemBlocks(caBundle(later))).toEqual([later.caCertPem]);
    // The old CA goes once the new one has been published for two propagation delays.
    expect(nextRotationStep(fresh, t0 + 4000, t0 + 1000, policy)).toEqual({ kind: 'none' });
    expect(nextRotationStep(fresh, t0 + 5000, t0 + 1000, policy).kind).toBe('drop-previous-ca');
    expect(nextRotationStep(fresh, t0 + 5000, undefined, policy)).toEqual({ kind: 'none' });
  });

  it('switches to the new CA anyway when the old-CA certificate is about to expire', async () => {
    const t0 = Date.now();
    const s0 = (await applyRotationStep({ kind: 'create', reason: '' }, undefined, t0, policy))!;
    const s1 = (await applyRotationStep({ kind: 'rotate-ca', reason: '' }, s0, t0 + 1000, policy))!;
    expect(nextRotationStep(s1, t0 + 7000, undefined, policy).kind).toBe('none');
    expect(nextRotationStep(s1, t0 + 8500, undefined, policy).kind).toBe('issue-certificate');
  });

  it('reissues when the names change and recreates unusable material', async () => {
    const t0 = Date.now();
    const s = (await applyRotationStep({ kind: 'create', reason: '' }, undefined, t0, policy))!;
    expect(nextRotationStep(s, t0, t0, { ...policy, ipAddresses: [] })).toMatchObject({ kind: 'issue-certificate', reason: 'serving certificate names changed' });
    expect(nextRotationStep({ ...s, caKeyPem: 'garbage' }, t0, t0, policy).kind).toBe('create');
    expect(nextRotationStep({ ...s, tlsKeyPem: s.caKeyPem }, t0, t0, policy).kind).toBe('issue-certificate');
    expect(nextRotationStep(s, t0 + 60_000, t0, policy).kind).toBe('create');
  });
});
