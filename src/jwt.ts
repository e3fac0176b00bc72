// The one reader of ServiceAccount token claims. Tokens are read, never verified: the source API
// server verifies them; the controller and kubemcsa only need the issue time (to turn the source's
// lifetime into local time) and the ServiceAccount's uid. Never logs or returns the token.
import * as t from 'io-ts';
import { decode } from './api/decode.js';

const Claims = t.partial({
  iat: t.number,
  exp: t.number,
  'kubernetes.io': t.partial({ serviceaccount: t.partial({ uid: t.string }) }),
});

interface TokenClaims {
  issuedAt?: Date;
  expiresAt?: Date;
  /** `kubernetes.io.serviceaccount.uid`: the ServiceAccount the token was minted for. */
  serviceAccountUid?: string;
}

/** The claims of a JWT's payload, without verifying it; empty when unreadable. */
export function readTokenClaims(token: string): TokenClaims {
  const payload = token.split('.')[1];
  if (payload === undefined) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return {};
  }
  const r = decode(Claims, raw);
  if (!r.ok) return {};
  const c = r.value;
  const uid = c['kubernetes.io']?.serviceaccount?.uid;
  return {
    ...(c.iat !== undefined ? { issuedAt: new Date(c.iat * 1000) } : {}),
    ...(c.exp !== undefined ? { expiresAt: new Date(c.exp * 1000) } : {}),
    ...(uid !== undefined ? { serviceAccountUid: uid } : {}),
  };
}
