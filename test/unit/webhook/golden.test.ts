import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { decodeOrThrow } from '../../../src/api/decode.js';
import { Pod } from '../../../src/webhook/admission.js';
import { mountPatch } from '../../../src/webhook/mutate.js';
import { admitOnce, silentLogger } from './doubles.js';
import { fixtureImports, importObject, recordedReviews } from './fixtures.js';
import { applied, fullPodPatch, mountImports } from './reference.js';

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

describe('mountPatch on the recorded pods', () => {
  it('is the whole-pod fast-json-patch diff to the pod the reference implementation mounts', () => {
    let compared = 0;
    for (const c of recordedReviews()) {
      const pod = decodeOrThrow(Pod, (c.review.request as unknown as { object: unknown }).object, 'pod');
      const ns = c.review.request.namespace;
      const found = ['cluster2-pod-lister', 'cluster3.reader'].map((n) => ({ name: n, import: importObject(ns, n, true) }));
      const reference = mountImports(pod, ns, found);
      const patched = mountPatch(pod, ns, found);
      if (!reference.allowed) {
        expect(patched).toEqual(reference);
        continue;
      }
      if (!patched.allowed) throw new Error(patched.problems.join());
      // Sorted: the order of a whole-pod diff follows the recorded pod's field order.
      const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
      expect([...patched.patch].sort(byPath)).toEqual([...fullPodPatch(pod, reference.pod)].sort(byPath));
      expect(applied(pod, patched.patch)).toEqual(reference.pod);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(10);
  });
});
