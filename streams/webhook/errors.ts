import { ApiException } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { decode } from '../../src/api/decode.js';

const StatusBody = t.partial({ message: t.string, reason: t.string });

/** A one-line description of an API or network error: the HTTP code and Status message, no headers or bodies. */
export function describeError(e: unknown): string {
  if (e instanceof ApiException) {
    let body: unknown = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body) as unknown;
      } catch {
        // not JSON
      }
    }
    const s = decode(StatusBody, body);
    const msg = s.ok && s.value.message ? s.value.message : 'no message';
    return `HTTP ${e.code}: ${msg}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** The HTTP status of an API error, if it is one. */
export function statusCode(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}
