import { describe, expect, it } from '@jest/globals';
import { readTokenClaims } from '../../src/jwt.js';

const jwt = (claims: unknown) => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;

describe('readTokenClaims (the one JWT claim reader of the controller and kubemcsa)', () => {
  it('reads iat, exp and the ServiceAccount uid without verifying', () => {
    expect(readTokenClaims(jwt({ iat: 1767225600, exp: 1767229200, 'kubernetes.io': { serviceaccount: { uid: 'u-1', name: 'x' } } }))).toEqual({
      issuedAt: new Date('2026-01-01T00:00:00Z'),
      expiresAt: new Date('2026-01-01T01:00:00Z'),
      serviceAccountUid: 'u-1',
    });
  });

  it('gives up quietly on anything else, and never on a half-valid payload', () => {
    for (const bad of ['not-a-jwt', 'a.!!!.c', jwt('a string'), jwt(null), jwt({ iat: 'yesterday' }), '', '..']) expect(readTokenClaims(bad)).toEqual({});
    expect(readTokenClaims(jwt({ iat: 1767225600 }))).toEqual({ issuedAt: new Date('2026-01-01T00:00:00Z') });
  });
});
