import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';

/** A decode failure: names the thing decoded and each failing field path. */
export class DecodeError extends Error {
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
export function formatErrors(errors: t.Errors): string[] {
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
