import { afterAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import * as t from 'io-ts';
import type { ServiceAccountImport } from '../../../src/api/import.js';
import { cappedArray, cappedRecord, decode } from '../../../src/api/decode.js';
import { IMPORT_ANNOTATION } from '../../../src/constants.js';
import { BadReview, decodeReview, MAX_IMPORTS_PER_POD, planAdmission } from '../../../src/webhook/review.js';
import { countJsonTokens, DEFAULT_MAX_BODY_BYTES } from '../../../streams/webhook/app.js';
import { ImportCache, type ImportLookup } from '../../../streams/webhook/lookup.js';
import { AdmissionPipeline } from '../../../streams/webhook/pipeline.js';
import { decidedAtOnce, silentLogger, StaticImportLookup } from './doubles.js';
import { importObject, testApp } from './fixtures.js';

// The bounds these tests hold the webhook to.
/** Problems a decode collects before it stops (src/api/decode.ts). */
const MAX_DECODE_ERRORS = 10;
/** Characters of a 400 answer's message (src/webhook/review.ts). */
const MAX_BAD_REQUEST_MESSAGE = 1024;
/** Containers and init containers of a pod the webhook mounts imports into (src/webhook/review.ts). */
const MAX_CONTAINERS = 200;
/** JSON objects, arrays and elements in one request body, by default (streams/webhook/app.ts). */
const DEFAULT_MAX_JSON_TOKENS = 100_000;

function review(uid: string, object: unknown) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'ns', object },
  };
}

function annotatedPod(annotation: string) {
  return { metadata: { name: 'p', annotations: { [IMPORT_ANNOTATION]: annotation } }, spec: { containers: [{ name: 'c' }] } };
}

const names = (n: number, prefix = 'imp') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const tick = () => new Promise((r) => setImmediate(r));

describe('import count limit', () => {
  it(`plans lookups for ${MAX_IMPORTS_PER_POD} imports and denies one more, naming the count and the limit`, () => {
    const atLimit = planAdmission(decodeReview(review('a', annotatedPod(names(MAX_IMPORTS_PER_POD).join(',')))));
    expect(atLimit).toMatchObject({ kind: 'lookup', names: names(MAX_IMPORTS_PER_POD) });
    const over = planAdmission(decodeReview(review('b', annotatedPod(names(MAX_IMPORTS_PER_POD + 1).join(',')))));
    expect(over).toMatchObject({ kind: 'answer', response: { uid: 'b', allowed: false, status: { code: 400 } } });
    expect(over.kind === 'answer' && over.response.status?.message).toBe(
      `annotation ${IMPORT_ANNOTATION} of pod "p" names more than ${MAX_IMPORTS_PER_POD} service account imports (${MAX_IMPORTS_PER_POD + 1} comma-separated entries); a pod may name at most ${MAX_IMPORTS_PER_POD}`,
    );
  });

  it('denies a 256 KiB annotation of thousands of names (valid or not) without listing them', () => {
    const huge = [...names(10_000), ...names(10_000, 'NOT_VALID')].join(',');
    expect(huge.length).toBeGreaterThan(200_000);
    const plan = planAdmission(decodeReview(review('h', annotatedPod(huge))));
    expect(plan.kind === 'answer' && plan.response.status?.message).toContain('names more than 32 service account imports (20000 comma-separated entries); a pod may name at most 32');
    expect(plan.kind === 'answer' && plan.response.status!.message!.length).toBeLessThan(300);
  });

  it('counts distinct entries only (duplicates and empty entries are not imports)', () => {
    const repeated = Array.from({ length: 1000 }, () => 'same').join(',') + ',,,';
    expect(planAdmission(decodeReview(review('d', annotatedPod(repeated))))).toMatchObject({ kind: 'lookup', names: ['same'] });
  });

  it('lists at most five invalid names', () => {
    const plan = planAdmission(decodeReview(review('i', annotatedPod(names(20, 'BAD').join(',')))));
    const message = plan.kind === 'answer' ? plan.response.status!.message! : '';
    expect(message.match(/is not a valid import name/g)).toHaveLength(5);
    expect(message).toContain('and 15 more');
  });
});

describe('decode error cap', () => {
  it('stops validating an array after the first failing elements', () => {
    let visited = 0;
    const counting = new t.Type<string, string, unknown>('counted', t.string.is, (u, c) => {
      visited++;
      return t.string.validate(u, c);
    }, t.identity);
    const r = decode(cappedArray(counting), Array.from({ length: 100_000 }, () => ({})));
    expect(r.ok).toBe(false);
    expect(visited).toBe(MAX_DECODE_ERRORS);
    expect(!r.ok && r.problems.length).toBeLessThanOrEqual(MAX_DECODE_ERRORS);
  });

  it('stops validating a map after the first failing entries', () => {
    const r = decode(cappedRecord(t.string), Object.fromEntries(names(50_000).map((n) => [n, 1])));
    expect(!r.ok && r.problems.length).toBe(MAX_DECODE_ERRORS);
  });

  it('decodes valid arrays and maps as t.array and t.record do', () => {
    expect(decode(cappedArray(t.string), ['a', 'b'])).toEqual({ ok: true, value: ['a', 'b'] });
    expect(decode(cappedRecord(t.string), { a: 'b' })).toEqual({ ok: true, value: { a: 'b' } });
    expect(cappedArray(t.string).is(['a', 1])).toBe(false);
  });

  it('answers a pod of 200,000 empty containers and 50,000 non-string annotations with a short message', () => {
    const object = {
      metadata: { name: 'x', annotations: Object.fromEntries(names(50_000).map((n) => [n, {}])) },
      spec: { containers: Array.from({ length: 200_000 }, () => ({})) },
    };
    let error: unknown;
    try {
      planAdmission(decodeReview(review('big', object)));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BadReview);
    const message = (error as Error).message;
    expect(message.length).toBeLessThanOrEqual(MAX_BAD_REQUEST_MESSAGE);
    expect(message).toMatch(/^request\.object is not a valid Pod: .*; and \d+ more$/);
  });

  it('bounds the message of a review whose uid is a huge non-string', () => {
    const body = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: Array.from({ length: 100_000 }, () => 'x') } };
    expect(() => decodeReview(body)).toThrow(BadReview);
    try {
      decodeReview(body);
    } catch (e) {
      expect((e as Error).message.length).toBeLessThanOrEqual(MAX_BAD_REQUEST_MESSAGE);
    }
  });
});

/** A fetch whose calls the test answers one by one. */
class ControlledFetch {
  calls: { key: string; resolve: (s: ServiceAccountImport | undefined) => void; reject: (e: Error) => void }[] = [];
  active = 0;
  maxActive = 0;
  started = 0;
  fetch = (namespace: string, name: string) => {
    this.started++;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return new Promise<ServiceAccountImport | undefined>((resolve, reject) => {
      const done = () => this.active--;
      this.calls.push({ key: `${namespace}/${name}`, resolve: (s) => (done(), resolve(s)), reject: (e) => (done(), reject(e)) });
    });
  };
  async answerAll(found: (key: string) => ServiceAccountImport | undefined = () => undefined) {
    while (this.calls.length > 0) {
      const c = this.calls.shift()!;
      c.resolve(found(c.key));
      await tick();
    }
  }
}

const emptyStore = { get: () => undefined, synced: true };

describe('ImportCache bounds', () => {
  it('looks an import up once for every concurrent caller (deduplicated in flight)', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch);
    const both = [cache.get('ns', 'a'), cache.get('ns', 'a')];
    await tick();
    expect(f.calls.map((c) => c.key)).toEqual(['ns/a']);
    f.calls.shift()!.resolve(importObject('ns', 'a', true));
    const [x, y] = await Promise.all(both);
    expect(x?.metadata.name).toBe('a');
    expect(y).toBe(x);
  });

  it('remembers a missing import for the negative TTL, then asks again', async () => {
    let now = 1000;
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch, undefined, { negativeTtlMs: 5000 }, () => now);
    const first = cache.get('ns', 'gone');
    await tick();
    await f.answerAll();
    expect(await first).toBeUndefined();
    expect(cache.known('ns', 'gone')).toEqual({ value: undefined });
    now += 4999;
    expect(await cache.get('ns', 'gone')).toBeUndefined();
    expect(f.calls).toHaveLength(0);
    now += 1;
    expect(cache.known('ns', 'gone')).toBeUndefined();
    const again = cache.get('ns', 'gone');
    await tick();
    expect(f.calls.map((c) => c.key)).toEqual(['ns/gone']);
    await f.answerAll();
    await again;
  });

  it('finds an import the watch delivers even while it is remembered as missing', async () => {
    const f = new ControlledFetch();
    const items = new Map<string, ServiceAccountImport>();
    const cache = new ImportCache({ get: (k) => items.get(k), synced: true }, f.fetch);
    const miss = cache.get('ns', 'late');
    await tick();
    await f.answerAll();
    expect(await miss).toBeUndefined();
    items.set('ns/late', importObject('ns', 'late', true));
    expect(cache.known('ns', 'late')?.value?.metadata.name).toBe('late');
  });

  it('forgets the oldest missing imports past the entry limit', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch, undefined, { negativeMaxEntries: 2 });
    for (const n of ['a', 'b', 'c']) {
      const p = cache.get('ns', n);
      await tick();
      await f.answerAll();
      await p;
    }
    expect(cache.known('ns', 'a')).toBeUndefined();
    expect(cache.known('ns', 'b')).toEqual({ value: undefined });
    expect(cache.known('ns', 'c')).toEqual({ value: undefined });
  });

  it('runs at most maxInFlight GETs at once, the rest in arrival order', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch, undefined, { maxInFlight: 2, slotWaitMs: 10_000 });
    const all = names(5).map((n) => cache.get('ns', n));
    await tick();
    expect(f.calls.map((c) => c.key)).toEqual(['ns/imp-0', 'ns/imp-1']);
    await f.answerAll();
    await Promise.all(all);
    expect(f.maxActive).toBe(2);
    expect(cache.runningLookups).toBe(0);
  });

  it('fails a lookup that waits longer than slotWaitMs for a slot, without starting its GET', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch, undefined, { maxInFlight: 1, slotWaitMs: 20 });
    const holding = cache.get('ns', 'slow');
    await expect(cache.get('ns', 'queued')).rejects.toMatchObject({ name: 'LookupBusyError' });
    expect(f.calls.map((c) => c.key)).toEqual(['ns/slow']);
    await f.answerAll();
    await holding;
    expect(cache.runningLookups).toBe(0);
  });
});

describe('AdmissionPipeline lookups per request', () => {
  it('runs at most lookupsPerRequest lookups for one pod, while pods the cache answers pass at once', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(
      { get: (k) => (k === 'ns/cached' ? importObject('ns', 'cached', true) : undefined), synced: true },
      f.fetch,
      undefined,
      { maxInFlight: 8, slotWaitMs: 10_000 },
    );
    const lookup: ImportLookup = cache;
    const p = new AdmissionPipeline({ lookup, log: silentLogger(), timeoutMs: 10_000, lookupsPerRequest: 3 });
    const hostile = p.admit(review('hostile', annotatedPod(names(MAX_IMPORTS_PER_POD, 'missing').join(','))));
    await tick();
    expect(f.calls).toHaveLength(3);
    expect(cache.runningLookups).toBe(3);

    const ordinary = await decidedAtOnce(p.admit(review('ordinary', annotatedPod('cached'))));
    expect(ordinary).toMatchObject({ kind: 'response', mutated: true, response: { uid: 'ordinary', allowed: true } });

    await f.answerAll();
    const out = await hostile;
    expect(f.maxActive).toBe(3);
    // The first answers said "missing": no other lookup started (the pod is denied anyway).
    expect(f.started).toBe(3);
    expect(out).toMatchObject({ kind: 'response', response: { uid: 'hostile', allowed: false, status: { code: 403 } } });
    const message = (out as { response: { status: { message: string } } }).response.status.message;
    expect(message).toContain('service account import "missing-0" not found in namespace "ns"');
    expect(message).toContain(`(${MAX_IMPORTS_PER_POD - 3} more imports not checked)`);
    // Now known missing: the same pod again is denied from memory, without a GET.
    const again = await decidedAtOnce(p.admit(review('again', annotatedPod(names(MAX_IMPORTS_PER_POD, 'missing').join(',')))));
    expect(again).toMatchObject({ kind: 'response', response: { uid: 'again', allowed: false } });
    // So is a pod naming one of them among names never looked up: one known missing name decides.
    const mixed = await decidedAtOnce(p.admit(review('mixed', annotatedPod(['cached', 'never-seen', 'missing-1'].join(',')))));
    expect(mixed).toMatchObject({ kind: 'response', response: { uid: 'mixed', allowed: false, status: { message: expect.stringContaining('"missing-1" not found') } } });
    expect((mixed as { response: { status: { message: string } } }).response.status.message).toContain('(1 more import not checked)'); // never-seen; cached was found
    expect(f.started).toBe(3);
    await p.close();
  });

  it('looks up every name when none is missing (found imports, in the annotation order)', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch, undefined, { maxInFlight: 8, slotWaitMs: 10_000 });
    const p = new AdmissionPipeline({ lookup: cache, log: silentLogger(), timeoutMs: 10_000, lookupsPerRequest: 2 });
    const wanted = names(5, 'fresh');
    const out = p.admit(review('fresh', annotatedPod(wanted.join(','))));
    await tick();
    await f.answerAll((k) => importObject('ns', k.split('/')[1]!, true));
    expect(f.started).toBe(5);
    const answer = await out;
    expect(answer).toMatchObject({ kind: 'response', mutated: true, response: { uid: 'fresh', allowed: true } });
    await p.close();
  });

  it('denies with the missing name when it comes after found ones, and starts no lookup after it', async () => {
    const f = new ControlledFetch();
    const cache = new ImportCache(emptyStore, f.fetch, undefined, { maxInFlight: 8, slotWaitMs: 10_000 });
    const p = new AdmissionPipeline({ lookup: cache, log: silentLogger(), timeoutMs: 10_000, lookupsPerRequest: 1 });
    const out = p.admit(review('typo', annotatedPod('a,b,typo,c,d')));
    await tick();
    await f.answerAll((k) => (k === 'ns/typo' ? undefined : importObject('ns', k.split('/')[1]!, true)));
    expect(f.started).toBe(3);
    const answer = (await out) as { response: { allowed: boolean; status: { message: string } } };
    expect(answer.response.allowed).toBe(false);
    expect(answer.response.status.message).toContain('service account import "typo" not found in namespace "ns" (2 more imports not checked)');
    await p.close();
  });
});

describe('body shape limit', () => {
  const { app, pipeline } = testApp(new StaticImportLookup([importObject('ns', 'imp', true)]));
  afterAll(() => pipeline.close());

  it('counts objects, arrays and elements, and stops past the limit', () => {
    expect(countJsonTokens(Buffer.from('{"a":[1,2,{}],"b":"x,y"}'), 100)).toBe(7);
    expect(countJsonTokens(Buffer.from(`[${'{},'.repeat(1000)}{}]`), 10)).toBe(11);
    // Dense and sparse beyond the first KiB count alike.
    expect(countJsonTokens(Buffer.from(`[${'{},'.repeat(5000)}{}]`), 1e9)).toBe(10_002);
    expect(countJsonTokens(Buffer.from(`{"a":"${'x'.repeat(5000)}","b":[1,2,{}]}`), 1e9)).toBe(6);
  });

  it(`refuses a body of more than ${DEFAULT_MAX_JSON_TOKENS} values with 413 before parsing it, and admits a full-size body of few values`, async () => {
    const n = Math.floor(DEFAULT_MAX_BODY_BYTES / 3) - 100;
    const manyObjects = JSON.stringify(review('many', { spec: { containers: [] } })).replace('"containers":[]', `"containers":[${Array(n).fill('{}').join(',')}]`);
    expect(manyObjects.length).toBeLessThanOrEqual(DEFAULT_MAX_BODY_BYTES);
    const r = await request(app).post('/mutate-pods').set('content-type', 'application/json').send(manyObjects);
    expect(r.status).toBe(413);
    expect(r.body.message).toBe(`request body holds more than ${DEFAULT_MAX_JSON_TOKENS} JSON objects, arrays and elements: no pod the API server can store is that large`);

    const bigPod = annotatedPod('imp') as ReturnType<typeof annotatedPod> & { metadata: { labels?: Record<string, string> } };
    bigPod.metadata.labels = { big: 'x'.repeat(DEFAULT_MAX_BODY_BYTES - 2000) };
    const ok = await request(app).post('/mutate-pods').set('content-type', 'application/json').send(JSON.stringify(review('big', bigPod)));
    expect(ok.status).toBe(200);
    expect(ok.body.response).toMatchObject({ uid: 'big', allowed: true });
  });

  it(`denies an annotated pod of more than ${MAX_CONTAINERS} containers before mutating it`, () => {
    const pod = annotatedPod('imp');
    pod.spec.containers = Array.from({ length: MAX_CONTAINERS + 1 }, (_, i) => ({ name: `c${i}` }));
    const plan = planAdmission(decodeReview(review('c', pod)));
    expect(plan).toMatchObject({ kind: 'answer', response: { allowed: false, status: { code: 400, message: `pod "p" has ${MAX_CONTAINERS + 1} containers and init containers; the webhook mounts imports into at most ${MAX_CONTAINERS}` } } });
  });
});
