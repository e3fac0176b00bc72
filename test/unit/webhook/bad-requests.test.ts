import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import * as t from 'io-ts';
import { decodeOrThrow } from '../../../src/api/decode.js';
import { FIXTURES, importObject, testApp } from './fixtures.js';
import { StaticImportLookup } from './doubles.js';
import { AdmissionReviewResponse } from './reference.js';

const Case = t.intersection([
  t.type({
    name: t.string,
    method: t.keyof({ GET: null, POST: null, PUT: null }),
    path: t.string,
    expect: t.intersection([t.type({ status: t.number, message: t.string }), t.partial({ allowed: t.boolean })]),
  }),
  t.partial({
    contentType: t.string,
    headers: t.record(t.string, t.string),
    body: t.string,
    json: t.unknown,
    bodyBase64: t.string,
    generate: t.literal('oversize'),
  }),
]);

const LIMIT = 64 * 1024;
const corpus = decodeOrThrow(t.array(Case), JSON.parse(readFileSync(path.join(FIXTURES, 'bad-requests.json'), 'utf8')), 'bad-request corpus');
const { app, pipeline } = testApp(new StaticImportLookup([importObject('team-a', 'ready-import', true)]), { maxBodyBytes: LIMIT });

function payload(c: t.TypeOf<typeof Case>): Buffer | undefined {
  if (c.generate === 'oversize') return Buffer.from(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', pad: 'x'.repeat(LIMIT) }));
  if (c.bodyBase64 !== undefined) return Buffer.from(c.bodyBase64, 'base64');
  if (c.json !== undefined) return Buffer.from(JSON.stringify(c.json));
  if (c.body !== undefined) return Buffer.from(c.body);
  return undefined;
}

describe('bad request corpus (test/fixtures/admission/bad-requests.json)', () => {
  afterAll(() => pipeline.close());

  it('has at least 30 cases with distinct names', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(30);
    expect(new Set(corpus.map((c) => c.name)).size).toBe(corpus.length);
  });

  for (const c of corpus) {
    it(`${c.name} → ${c.expect.status}${c.expect.allowed === false ? ' deny' : ''}`, async () => {
      let req = request(app)[c.method === 'GET' ? 'get' : c.method === 'PUT' ? 'put' : 'post'](c.path);
      for (const [k, v] of Object.entries(c.headers ?? {})) req = req.set(k, v);
      const body = payload(c);
      // superagent would pick a type for a Buffer body; an explicit empty header means "none".
      req = req.set('Content-Type', c.contentType ?? '');
      // Send the bytes as they are (superagent would otherwise JSON-encode a Buffer).
      const res = body === undefined ? await req : await req.serialize((d: unknown) => d as string).send(body);
      expect(res.status).toBe(c.expect.status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      if (c.expect.status === 200) {
        const review = decodeOrThrow(AdmissionReviewResponse, res.body, 'AdmissionReview response');
        expect(review.response.uid).toBe('bad-1');
        expect(review.response.allowed).toBe(c.expect.allowed ?? true);
        expect(review.response.status?.message ?? '').toContain(c.expect.message);
      } else {
        expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', code: c.expect.status });
        expect((res.body as { message: string }).message).toContain(c.expect.message);
      }
    });
  }
});
