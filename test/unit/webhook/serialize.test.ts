import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeOrThrow } from '../../../src/api/decode.js';
import { allow, deny, serializeReview, type AdmissionResponse } from '../../../src/webhook/admission.js';
import { admitOnce, silentLogger } from './doubles.js';
import { fixtureImports, recordedReviews } from './fixtures.js';
import { AdmissionReviewResponse, reviewResponse } from './reference.js';

/** serializeReview's bytes are JSON.stringify's, and they decode as an AdmissionReview answer. */
function expectSameBytes(response: AdmissionResponse): void {
  const bytes = serializeReview(response);
  expect(bytes.toString('utf8')).toBe(JSON.stringify(reviewResponse(response)));
  expect(bytes.equals(Buffer.from(JSON.stringify(reviewResponse(response)), 'utf8'))).toBe(true);
  expect(decodeOrThrow(AdmissionReviewResponse, JSON.parse(bytes.toString('utf8')), 'response').response).toEqual(JSON.parse(JSON.stringify(response)));
}

describe('serializeReview', () => {
  it('writes the bytes of JSON.stringify(reviewResponse(…)) for every recorded review', async () => {
    const kinds = new Set<string>();
    for (const c of recordedReviews()) {
      const outcome = await admitOnce({ lookup: fixtureImports(c.review.request.namespace), log: silentLogger() }, c.review);
      if (outcome.kind !== 'response') continue;
      const r = outcome.response;
      kinds.add(r.allowed ? `allowed${r.patch ? ' with patch' : ''}${r.warnings ? ' with warnings' : ''}` : 'denied');
      expectSameBytes(r);
    }
    expect([...kinds].sort()).toEqual(['allowed', 'allowed with patch', 'allowed with patch with warnings', 'denied']);
  });

  it('escapes what needs escaping: messages, warnings and uids with quotes, control characters and non-ASCII', () => {
    const odd = 'quote " backslash \\ newline \n tab \t nul \u0000 é 漢 😀 lone \ud800';
    expectSameBytes(allow(odd));
    expectSameBytes(allow('u', { patch: [{ op: 'add', path: `/metadata/labels/${odd}`, value: odd }], warnings: [odd, 'plain'] }));
    expectSameBytes(deny(odd, odd, 400));
    expectSameBytes(deny('u', 'plain'));
  });

  it('escapes a patch it did not encode itself (set by hand, or replaced after allow)', () => {
    expectSameBytes({ uid: 'u', allowed: true, patchType: 'JSONPatch', patch: 'not "base64"\n' });
    const r = allow('u', { patch: [{ op: 'add', path: '/x', value: 1 }] });
    r.patch = 'replaced "after" allow';
    expectSameBytes(r);
  });

  it('leaves out undefined members and keeps the members in their order, as JSON.stringify does', () => {
    expectSameBytes({ warnings: undefined, allowed: true, uid: 'u', status: undefined, auditAnnotations: { 'a"b': 'c' } });
  });

  it('writes the bytes of JSON.stringify for any patch, warnings and uid (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.array(fc.jsonValue(), { maxLength: 4 }), fc.array(fc.string({ unit: 'binary' }), { maxLength: 3 }), (uid, patch, warnings) => {
        expectSameBytes(allow(uid, { patch, warnings }));
      }),
      { numRuns: 300 },
    );
  });
});
