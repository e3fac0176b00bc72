import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import fc from 'fast-check';
import { boundedLine, describeError } from '../../src/describe-error.js';

/** The longest description the describer gives (src/describe-error.ts). */
const MAX_DESCRIPTION_LENGTH = 1024;

const JWT = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDp4In0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';
const status = (code: number, message: string) => new ApiException(code, 'failed', JSON.stringify({ kind: 'Status', message }), {});

describe('the one error describer', () => {
  it('bounds a huge remote error text to one line of at most MAX_DESCRIPTION_LENGTH characters, saying how long it was', () => {
    const huge = `denied: ${'A'.repeat(2_000_000)}\nsecond line`;
    const d = describeError(status(500, huge));
    expect(d.length).toBeLessThanOrEqual(MAX_DESCRIPTION_LENGTH);
    expect(d).toMatch(/^HTTP 500: denied: A+… \(\d+ characters in all\)$/);
    expect(d).not.toContain('\n');
  });

  it('bounds a huge body that is not a Status, and a huge Error message', () => {
    expect(describeError(new ApiException(502, 'x', 'x'.repeat(10_000_000), {})).length).toBeLessThanOrEqual(MAX_DESCRIPTION_LENGTH);
    expect(describeError(new Error('y'.repeat(10_000_000))).length).toBeLessThanOrEqual(MAX_DESCRIPTION_LENGTH);
  });

  it('never lets a token-looking string of remote text through, whole or cut by the bound', () => {
    expect(describeError(status(403, `token ${JWT} refused`))).toBe('HTTP 403: token [redacted] refused');
    expect(describeError(new Error(`Authorization: Bearer abcdef.0123456789abcdef rejected`))).toBe('Authorization: Bearer [redacted] rejected');
    // A token placed where the bound cuts it: no part of its signature is left.
    for (let at = MAX_DESCRIPTION_LENGTH - 200; at < MAX_DESCRIPTION_LENGTH + 10; at += 7) {
      const d = describeError(status(500, `${'a '.repeat(at / 2)}${JWT} ${'b'.repeat(5000)}`));
      expect(d).not.toContain('c2lnbmF0dXJl');
      expect(d).not.toContain('eyJzdWIi');
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), fc.string({ maxLength: 3000 }), (before, after) => {
        const d = boundedLine(`${before}${JWT}${after.replace(/^[A-Za-z0-9_.-]/, ' ')}`);
        expect(d).not.toContain('c2lnbmF0dXJl');
        expect(d.length).toBeLessThanOrEqual(MAX_DESCRIPTION_LENGTH);
      }),
    );
  });

  it('keeps the shapes callers match on: HTTP code for conditions, reason words for the CLI, the network cause', () => {
    expect(describeError(status(403, 'nope'))).toBe('HTTP 403: nope');
    expect(describeError(status(403, 'nope'), { status: 'reason' })).toBe('forbidden: nope');
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    expect(describeError(refused)).toBe('connect ECONNREFUSED 127.0.0.1:1');
    expect(describeError(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe('HTTP 410 Gone');
  });
});
