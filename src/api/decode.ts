import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';

/** A decode failure: names the thing decoded and each failing field path. */
class DecodeError extends Error {
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`invalid ${what}: ${problems.join('; ')}`);
    this.name = 'DecodeError';
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** Intersections and unions add numeric context keys that are not part of the field path. */
function isCombinator(type: t.Decoder<unknown, unknown> | undefined): boolean {
  const tag = (type as { _tag?: string } | undefined)?._tag;
  return tag === 'IntersectionType' || tag === 'UnionType';
}

/** Readable lines for io-ts errors: `spec.clusterName: expected string, got missing`. */
function formatErrors(errors: t.Errors): string[] {
  const lines = errors.map((e) => {
    const path = e.context
      .filter((c, i) => c.key !== '' && !isCombinator(e.context[i - 1]?.type))
      .map((c) => c.key)
      .join('.');
    const expected = e.context[e.context.length - 1]?.type.name ?? 'value';
    return e.message ?? `${path || '(root)'}: expected ${expected}, got ${describeValue(e.value)}`;
  });
  return [...new Set(lines)];
}

/** Decodes `value` with `codec`, or throws a DecodeError naming `what` and the failing fields. */
export function decodeOrThrow<A, O>(codec: t.Type<A, O, unknown>, value: unknown, what: string): A {
  const r = codec.decode(value);
  if (isLeft(r)) throw new DecodeError(what, formatErrors(r.left));
  return r.right;
}

/** Decodes `value`, returning either the value or the problems (for callers that must not throw). */
export function decode<A, O>(codec: t.Type<A, O, unknown>, value: unknown): { ok: true; value: A } | { ok: false; problems: string[] } {
  const r = codec.decode(value);
  return isLeft(r) ? { ok: false, problems: formatErrors(r.left) } : { ok: true, value: r.right };
}

/**
 * How many problems a bounded decode collects before it stops. io-ts collects one error per
 * failing element; a body of a million bad elements must not cost a million errors.
 */
const MAX_DECODE_ERRORS = 10;

/** `t.array(item)` that stops at the first `maxErrors` failing elements (the type guard already stops at the first). */
export function cappedArray<C extends t.Mixed>(item: C, maxErrors = MAX_DECODE_ERRORS): t.Type<t.TypeOf<C>[], t.OutputOf<C>[], unknown> {
  return new t.ArrayType<C, t.TypeOf<C>[], t.OutputOf<C>[], unknown>(
    `Array<${item.name}>`,
    (u): u is t.TypeOf<C>[] => Array.isArray(u) && u.every((x) => item.is(x)),
    (u, c) => {
      if (!Array.isArray(u)) return t.failure(u, c);
      const errors: t.ValidationError[] = [];
      let out: unknown[] = u;
      for (let i = 0; i < u.length && errors.length < maxErrors; i++) {
        const r = item.validate(u[i], t.appendContext(c, String(i), item, u[i]));
        if (isLeft(r)) errors.push(...r.left.slice(0, maxErrors - errors.length));
        else if (r.right !== u[i]) {
          if (out === u) out = u.slice();
          out[i] = r.right;
        }
      }
      return errors.length > 0 ? t.failures(errors) : t.success(out as t.TypeOf<C>[]);
    },
    (a) => a.map((x) => item.encode(x) as t.OutputOf<C>),
    item,
  );
}

function isPlainObject(u: unknown): u is Record<string, unknown> {
  return typeof u === 'object' && u !== null && !Array.isArray(u);
}

/** `t.record(t.string, value)` that stops at the first `maxErrors` failing entries. */
export function cappedRecord<C extends t.Mixed>(value: C, maxErrors = MAX_DECODE_ERRORS): t.Type<Record<string, t.TypeOf<C>>, Record<string, t.OutputOf<C>>, unknown> {
  return new t.Type<Record<string, t.TypeOf<C>>, Record<string, t.OutputOf<C>>, unknown>(
    `{ [K in string]: ${value.name} }`,
    (u): u is Record<string, t.TypeOf<C>> => isPlainObject(u) && Object.values(u).every((x) => value.is(x)),
    (u, c) => {
      if (!isPlainObject(u)) return t.failure(u, c);
      const errors: t.ValidationError[] = [];
      let out: Record<string, unknown> = u;
      for (const k of Object.keys(u)) {
        if (errors.length >= maxErrors) break;
        const r = value.validate(u[k], t.appendContext(c, k, value, u[k]));
        if (isLeft(r)) errors.push(...r.left.slice(0, maxErrors - errors.length));
        else if (r.right !== u[k]) {
          if (out === u) out = { ...u };
          out[k] = r.right;
        }
      }
      return errors.length > 0 ? t.failures(errors) : t.success(out as Record<string, t.TypeOf<C>>);
    },
    (a) => Object.fromEntries(Object.entries(a).map(([k, x]) => [k, value.encode(x) as t.OutputOf<C>])),
  );
}

/** At most `max` problems joined for one message, with how many were left out. */
export function joinProblems(problems: string[], max = 5): string {
  const shown = problems.slice(0, max).join('; ');
  return problems.length > max ? `${shown}; and ${problems.length - max} more` : shown;
}
