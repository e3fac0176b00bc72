import { X509Certificate } from 'node:crypto';
import { createCa, issueCertificate } from './pki.js';
import { checkServingMaterial, issuedBy, pemBlocks, subjectAltNames } from './serving.js';

/** What the self-managed TLS Secret holds. `previousCaPem` stays in the bundle during a CA rollover. */
export interface StoredTls {
  caCertPem: string;
  caKeyPem: string;
  tlsCertPem: string;
  tlsKeyPem: string;
  previousCaPem?: string;
}

/** Keys of the TLS Secret (type kubernetes.io/tls, so `tls.crt`/`tls.key` are where tools look). */
export const TLS_SECRET_KEYS = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  tlsCert: 'tls.crt',
  tlsKey: 'tls.key',
  previousCa: 'previous-ca.crt',
} as const;

export interface RotationPolicy {
  caValidityMs: number;
  certValidityMs: number;
  dnsNames: string[];
  ipAddresses: string[];
  /** How long the new CA must have been in the webhook configuration before the server switches to a certificate it signed. */
  propagationDelayMs: number;
  /** How far back `notBefore` is set (clock skew between replicas and API servers). */
  backdateMs?: number;
}

type RotationStep =
  | { kind: 'create'; reason: string }
  | { kind: 'rotate-ca'; reason: string }
  | { kind: 'drop-previous-ca'; reason: string }
  | { kind: 'issue-certificate'; reason: string }
  | { kind: 'none'; waiting?: string };

function validity(pem: string): { notBefore: number; notAfter: number } {
  const c = new X509Certificate(pem);
  return { notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo) };
}

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  return a.length === b.length && b.every((x) => sa.has(x)) && sa.size === new Set(b).size;
}

/** The CA bundle to publish in the webhook configuration: the current CA, then the previous one. */
export function caBundle(s: StoredTls): string {
  return s.caCertPem + (s.previousCaPem ?? '');
}

/** The certificate among `cas` (PEM, several blocks) that issued `leafPem`, if any. */
export function issuerOf(leafPem: string, cas: string): string | undefined {
  return pemBlocks(cas).find((ca) => issuedBy(leafPem, ca));
}

/**
 * The next thing to do to the stored TLS material, decided from it and the clock alone. One step
 * at a time: the caller writes, re-reads and asks again. A CA rollover goes: new CA (old one kept in
 * the bundle, serving certificate renewed from the old CA) → bundle published → after `propagationDelayMs` a
 * serving certificate from the new CA → old CA dropped once expired. No admission ever sees a
 * certificate its API server cannot verify.
 */
export function nextRotationStep(stored: StoredTls | undefined, now: number, caPublishedSince: number | undefined, p: RotationPolicy): RotationStep {
  if (!stored) return { kind: 'create', reason: 'no TLS material stored yet' };
  let ca: { notBefore: number; notAfter: number };
  let leaf: { notBefore: number; notAfter: number };
  try {
    ca = validity(stored.caCertPem);
    checkServingMaterial({ certPem: stored.caCertPem, keyPem: stored.caKeyPem });
  } catch (e) {
    return { kind: 'create', reason: `stored CA is unusable: ${(e as Error).message}` };
  }
  if (ca.notAfter <= now) return { kind: 'create', reason: 'stored CA has expired' };
  let leafUsable = true;
  try {
    leaf = validity(stored.tlsCertPem);
    checkServingMaterial({ certPem: stored.tlsCertPem, keyPem: stored.tlsKeyPem });
    if (leaf.notAfter <= now) leafUsable = false;
  } catch {
    leafUsable = false;
    leaf = { notBefore: 0, notAfter: 0 };
  }
  const leafFromCurrentCa = leafUsable && issuedBy(stored.tlsCertPem, stored.caCertPem);

  if (leafFromCurrentCa && ca.notAfter - now < p.caValidityMs / 3) return { kind: 'rotate-ca', reason: 'CA is in the last third of its validity' };
  const caPublished = caPublishedSince !== undefined && now - caPublishedSince >= p.propagationDelayMs;
  if (stored.previousCaPem) {
    const prevExpired = pemBlocks(stored.previousCaPem).every((b) => {
      try {
        return validity(b).notAfter <= now;
      } catch {
        return true; // unparsable: drop it
      }
    });
    if (prevExpired) return { kind: 'drop-previous-ca', reason: 'previous CA has expired' };
    // Every replica switches to a certificate from the current CA at most one propagation delay
    // after it sees the CA published (and checks at least that often): after two, nobody serves
    // from the previous CA any more, and its key may be gone (a lost Secret).
    if (leafFromCurrentCa && caPublishedSince !== undefined && now - caPublishedSince >= 2 * p.propagationDelayMs)
      return { kind: 'drop-previous-ca', reason: 'every replica serves a certificate from the current CA' };
  }
  if (!leafUsable) return { kind: 'issue-certificate', reason: 'serving certificate is missing, invalid or expired' };

  if (!leafFromCurrentCa) {
    if (caPublished || leaf.notAfter - now < p.propagationDelayMs) return { kind: 'issue-certificate', reason: 'serving certificate is from the previous CA' };
    return { kind: 'none', waiting: 'new CA not yet published long enough' };
  }
  if (leaf.notAfter - now < p.certValidityMs / 3) return { kind: 'issue-certificate', reason: 'serving certificate is in the last third of its validity' };
  const sans = subjectAltNames(stored.tlsCertPem);
  if (!sameSet(sans.dns, p.dnsNames) || !sameSet(sans.ip, p.ipAddresses)) return { kind: 'issue-certificate', reason: 'serving certificate names changed' };
  return { kind: 'none' };
}

async function issueServing(caCertPem: string, caKeyPem: string, now: number, p: RotationPolicy) {
  const backdate = p.backdateMs ?? Math.min(60_000, p.certValidityMs / 10);
  const caNotAfter = validity(caCertPem).notAfter;
  return issueCertificate(
    { certPem: caCertPem, keyPem: caKeyPem },
    {
      commonName: p.dnsNames[2] ?? p.dnsNames[0] ?? 'multicluster-service-account-webhook',
      dnsNames: p.dnsNames,
      ipAddresses: p.ipAddresses,
      usage: 'server',
      notBefore: new Date(now - backdate),
      notAfter: new Date(Math.min(now + p.certValidityMs, caNotAfter)),
    },
  );
}

async function newCa(now: number, p: RotationPolicy) {
  const backdate = p.backdateMs ?? Math.min(60_000, p.caValidityMs / 10);
  const notBefore = new Date(now - backdate);
  return createCa('multicluster-service-account-webhook-ca', (p.caValidityMs + backdate) / 86_400_000, notBefore);
}

/**
 * The certificates of a published bundle still worth trusting: unexpired CAs, each once, the
 * order kept. What a replica may still be serving from when the stored material is lost.
 */
function trustedCas(bundlePem: string, now: number): string | undefined {
  const seen = new Set<string>();
  const keep: string[] = [];
  for (const b of pemBlocks(bundlePem)) {
    try {
      const c = new X509Certificate(b);
      if (!c.ca || Date.parse(c.validTo) <= now || seen.has(c.fingerprint256)) continue;
      seen.add(c.fingerprint256);
      keep.push(b);
    } catch {
      // not a certificate: leave it out
    }
  }
  return keep.length > 0 ? keep.join('') : undefined;
}

/**
 * Applies one step (creating keys and certificates as needed); `undefined` for `none`.
 * `published` is the CA bundle the webhook configuration holds now: when the stored material is
 * lost (`create`), its still-valid CAs stay in the new bundle as previous CAs, so that the
 * certificates replicas serve until they switch stay verifiable.
 */
export async function applyRotationStep(step: RotationStep, stored: StoredTls | undefined, now: number, p: RotationPolicy, published?: string): Promise<StoredTls | undefined> {
  switch (step.kind) {
    case 'none':
      return undefined;
    case 'create': {
      const ca = await newCa(now, p);
      const leaf = await issueServing(ca.certPem, ca.keyPem, now, p);
      const previousCaPem = published === undefined ? undefined : trustedCas(published, now);
      return { caCertPem: ca.certPem, caKeyPem: ca.keyPem, tlsCertPem: leaf.certPem, tlsKeyPem: leaf.keyPem, ...(previousCaPem ? { previousCaPem } : {}) };
    }
    case 'rotate-ca': {
      // The serving certificate is renewed from the old CA at the same time, so that it comfortably
      // outlives the wait for the new CA to reach every API server.
      const ca = await newCa(now, p);
      const leaf = await issueServing(stored!.caCertPem, stored!.caKeyPem, now, p);
      return { caCertPem: ca.certPem, caKeyPem: ca.keyPem, previousCaPem: stored!.caCertPem, tlsCertPem: leaf.certPem, tlsKeyPem: leaf.keyPem };
    }
    case 'drop-previous-ca': {
      const { previousCaPem: _drop, ...rest } = stored!;
      return rest;
    }
    case 'issue-certificate': {
      const leaf = await issueServing(stored!.caCertPem, stored!.caKeyPem, now, p);
      return { ...stored!, tlsCertPem: leaf.certPem, tlsKeyPem: leaf.keyPem };
    }
  }
}
