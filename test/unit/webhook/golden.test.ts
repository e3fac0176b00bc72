import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { silentLogger } from '../../../src/logger.js';
import { admitOnce } from '../../../streams/webhook/pipeline.js';
import { fixtureImports, recordedReviews } from './fixtures.js';

/** What a golden file pins: the decision, its message or warnings, and the decoded JSON Patch. */
function summary(outcome: Awaited<ReturnType<typeof admitOnce>>) {
  if (outcome.kind !== 'response') return { httpError: outcome };
  const r = outcome.response;
  return {
    allowed: r.allowed,
    ...(r.status ? { status: r.status } : {}),
    ...(r.warnings ? { warnings: r.warnings } : {}),
    ...(r.patch ? { patch: JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8')) as Operation[] } : {}),
  };
}

describe('golden: recorded AdmissionReviews → responses', () => {
  const cases = recordedReviews();
  it('has the recorded fixtures', () => expect(cases.length).toBeGreaterThanOrEqual(15));

  for (const c of cases) {
    it(`${c.name}`, async () => {
      const ns = c.review.request.namespace;
      const outcome = await admitOnce({ lookup: fixtureImports(ns), log: silentLogger() }, c.review);
      const got = summary(outcome);
      const goldenFile = c.file.replace(/\.review\.json$/, '.expected.json');
      if (process.env.UPDATE_GOLDEN || !existsSync(goldenFile)) writeFileSync(goldenFile, JSON.stringify(got, null, 2) + '\n');
      expect(got).toEqual(JSON.parse(readFileSync(goldenFile, 'utf8')));
      if (outcome.kind !== 'response') return;
      expect(outcome.response.uid).toBe(c.review.request.uid);

      if (outcome.response.patch) {
        // The patch applies cleanly to the recorded pod, and admitting the patched pod again changes nothing.
        const pod = (c.review.request as unknown as { object: unknown }).object;
        const patched = fastJsonPatch.applyPatch(structuredClone(pod), (got as { patch: Operation[] }).patch, true, false).newDocument;
        const again = await admitOnce(
          { lookup: fixtureImports(ns), log: silentLogger() },
          { ...c.review, request: { ...c.review.request, object: patched } },
        );
        expect(again.kind === 'response' && again.response.allowed && again.response.patch === undefined).toBe(true);
      }
    });
  }
});

describe('podPatch', () => {
  it('equals the whole-pod fast-json-patch diff on every recorded pod', async () => {
    const { mountImports, podPatch, fullPodPatch } = await import('../../../src/webhook/mutate.js');
    const { Pod } = await import('../../../src/webhook/admission.js');
    const { decodeOrThrow } = await import('../../../src/api/decode.js');
    const { importObject } = await import('./fixtures.js');
    let compared = 0;
    for (const c of recordedReviews()) {
      const pod = decodeOrThrow(Pod, (c.review.request as unknown as { object: unknown }).object, 'pod');
      const ns = c.review.request.namespace;
      const names = ['cluster2-pod-lister', 'cluster3.reader'];
      const r = mountImports(pod, ns, names.map((n) => ({ name: n, import: importObject(ns, n, true) })));
      if (!r.allowed) continue;
      const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
      expect([...podPatch(pod, r.pod)].sort(byPath)).toEqual([...fullPodPatch(pod, r.pod)].sort(byPath));
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(10);
  });
});
