import { createPrivateKey, X509Certificate } from 'node:crypto';

/** A serving certificate (chain) and its key, as PEM. */
export interface ServingMaterial {
  certPem: string;
  keyPem: string;
}

/** The PEM blocks of one kind in `pem` (a bundle may hold several). */
export function pemBlocks(pem: string, label = 'CERTIFICATE'): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g');
  return (pem.match(re) ?? []).map((b) => `${b}\n`);
}

/** Checks that `certPem` parses, its first certificate matches `keyPem`, and gives its expiry. */
export function checkServingMaterial(m: ServingMaterial): { notAfter: Date; notBefore: Date } {
  const first = pemBlocks(m.certPem)[0];
  if (!first) throw new Error('certificate file holds no PEM certificate');
  const cert = new X509Certificate(first);
  const key = createPrivateKey(m.keyPem);
  if (!cert.checkPrivateKey(key)) throw new Error('the private key does not match the certificate');
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

/** Whether `leafPem` was signed by `caPem`. */
export function issuedBy(leafPem: string, caPem: string): boolean {
  try {
    const leaf = new X509Certificate(leafPem);
    const ca = new X509Certificate(caPem);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** DNS and IP SANs of a certificate. */
export function subjectAltNames(certPem: string): { dns: string[]; ip: string[] } {
  const san = new X509Certificate(certPem).subjectAltName ?? '';
  const dns: string[] = [];
  const ip: string[] = [];
  for (const part of san.split(/,\s*/)) {
    if (part.startsWith('DNS:')) dns.push(part.slice(4));
    else if (part.startsWith('IP Address:')) ip.push(part.slice(11));
  }
  return { dns, ip };
}

/** SHA-256 fingerprint, for logs (never the key). */
export function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** The DNS names a Service is reached by inside the cluster. */
export function serviceDnsNames(service: string, namespace: string, clusterDomain = 'cluster.local'): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`];
}
