import { ApiException } from '@kubernetes/client-node';
import { describeError as describeAnyError } from '../../src/describe-error.js';

/** A one-line description of an API or network error: the HTTP code and Status message, bounded and redacted. */
export function describeError(e: unknown): string {
  return describeAnyError(e);
}

/** The HTTP status of an API error, if it is one. */
export function statusCode(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}
