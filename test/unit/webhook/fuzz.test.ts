import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { decode } from '../../../src/api/decode.js';
import { StaticImportLookup } from './doubles.js';
import { importObject, recordedReviews, testApp } from './fixtures.js';
import { AdmissionReviewResponse } from './reference.js';

/**
 * ≥ 10,000 bodies over real HTTP: random JSON, review-shaped objects with random fields, recorded
 * reviews with random mutations, and random bytes. Every answer is a 4xx or an AdmissionReview
 * (allowed with a patch that applies to the pod, or denied with a message), never a 5xx.
 */
const reviews = recordedReviews();
const namespace = reviews[0]!.review.request.namespace;
const names = ['cluster2-pod-lister', 'cluster3.reader', 'pending-import', 'absent', 'Bad_Name', ''];
const lookup = new StaticImportLookup([
  importObject(namespace, 'cluster2-pod-lister', true),
  importObject(namespace, 'cluster3.reader', true),
  importObject(namespace, 'pending-import', false),
]);
const { app, pipeline } = testApp(lookup, { maxBodyBytes: 256 * 1024 });
const server = http.createServer(app);
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
let port = 0;
const seen = new Map<number, number>();
const decisions = { allowed: 0, denied: 0 };

function post(body: Buffer, contentType: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/mutate-pods', method: 'POST', agent, headers: { 'Content-Type': contentType, 'Content-Length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function check(body: Buffer, contentType = 'application/json'): Promise<void> {
  const res = await post(body, contentType);
  seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
  if (res.status >= 500 || res.status < 200 || (res.status > 200 && res.status < 400)) throw new Error(`status ${res.status}: ${res.text.slice(0, 300)}`);
  expect(res.type).toMatch(/^application\/json/);
  if (res.status !== 200) return;
  const parsed = decode(AdmissionReviewResponse, JSON.parse(res.text));
  if (!parsed.ok) throw new Error(`200 without an AdmissionReview: ${res.text.slice(0, 300)}`);
  const sent = JSON.parse(body.toString('utf8')) as { request: { uid: string; object?: unknown } };
  expect(parsed.value.response.uid).toBe(sent.request.uid);
  const r = parsed.value.response;
  if (!r.allowed) {
    decisions.denied++;
    expect(r.status?.message).toBeTruthy();
    return;
  }
  decisions.allowed++;
  if (r.patch) {
    const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8')) as Operation[];
    expect(fastJsonPatch.validate(ops, structuredClone(sent.request.object))).toBeUndefined();
  }
}

/** Every path (object keys and array indexes) inside a JSON value, the root excluded. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.keys(value).flatMap((k) => [[...prefix, k], ...paths((value as Record<string, unknown>)[k], [...prefix, k])]);
}

/** A copy of `doc` with the value at `path` replaced (mode 0), deleted (1) or turned into a string (2). */
function edit(doc: unknown, path: string[], replacement: unknown, mode: number): unknown {
  const copy = structuredClone(doc) as Record<string, unknown>;
  let parent: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (mode === 1) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else parent[last] = mode === 0 ? replacement : JSON.stringify(parent[last]) ?? 'null';
  return copy;
}

const json = fc.jsonValue({ maxDepth: 4 });
const reviewish = fc.record(
  {
    apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), json),
    kind: fc.oneof(fc.constant('AdmissionReview'), json),
    request: fc.oneof(
      fc.record(
        {
          uid: fc.oneof(fc.uuid(), json),
          kind: fc.oneof(fc.constant({ group: '', version: 'v1', kind: 'Pod' }), json),
          operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'), json),
          namespace: fc.oneof(fc.constant(namespace), fc.string()),
          dryRun: fc.oneof(fc.boolean(), json),
          object: fc.oneof(
            fc.record({
              metadata: fc.record({ name: fc.string(), annotations: fc.dictionary(fc.constantFrom('multicluster.admiralty.io/service-account-import.name', 'x'), fc.array(fc.constantFrom(...names)).map((a) => a.join(','))) }, { requiredKeys: [] }),
              spec: fc.record({
                containers: fc.array(fc.record({ name: fc.string(), volumeMounts: fc.array(fc.record({ name: fc.string(), mountPath: fc.string() })) }, { requiredKeys: ['name'] }), { maxLength: 3 }),
                initContainers: fc.array(fc.record({ name: fc.string() }), { maxLength: 2 }),
                volumes: fc.array(fc.record({ name: fc.string(), secret: fc.record({ secretName: fc.string() }) }, { requiredKeys: ['name'] }), { maxLength: 3 }),
              }, { requiredKeys: ['containers'] }),
            }),
            json,
          ),
        },
        { requiredKeys: [] },
      ),
      json,
    ),
  },
  { requiredKeys: [] },
);

describe('fuzzed admission requests', () => {
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    agent.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await pipeline.close();
    console.log(`fuzz: statuses ${JSON.stringify(Object.fromEntries(seen))}, decisions ${JSON.stringify(decisions)}`);
  });

  it('random JSON values (2,500)', async () => {
    await fc.assert(fc.asyncProperty(json, async (v) => check(Buffer.from(JSON.stringify(v)))), { numRuns: 2500 });
  }, 120_000);

  it('review-shaped objects with random fields (2,500)', async () => {
    await fc.assert(fc.asyncProperty(reviewish, async (v) => check(Buffer.from(JSON.stringify(v)))), { numRuns: 2500 });
  }, 120_000);

  it('recorded reviews with random edits (3,000)', async () => {
    const arb = fc.tuple(fc.nat(reviews.length - 1), fc.array(fc.tuple(fc.nat(), json, fc.nat(2)), { minLength: 1, maxLength: 3 }));
    await fc.assert(
      fc.asyncProperty(arb, async ([i, edits]) => {
        let v: unknown = reviews[i]!.review;
        for (const [at, replacement, mode] of edits) {
          const all = paths(v);
          if (all.length > 0) v = edit(v, all[at % all.length]!, replacement, mode);
        }
        await check(Buffer.from(JSON.stringify(v)));
      }),
      { numRuns: 3000 },
    );
  }, 120_000);

  it('random bytes, with and without a JSON content type (2,000)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream'), async (bytes, type) =>
        check(Buffer.from(bytes), type),
      ),
      { numRuns: 2000 },
    );
    expect(decisions.allowed + decisions.denied).toBeGreaterThan(500);
  }, 120_000);
});
