import { ApiException, Observable as KubeObservable, ResponseContext, type ConfigurationOptions, type RequestContext, type ResponseBody } from '@kubernetes/client-node';
import { describeError } from '../src/describe-error.js';
import { readBytesAtMost, RESPONSE_LIMITS } from './bounded-body.js';

/**
 * Per-call options for client-node's generated APIs: a deadline (and the caller's abort signal)
 * on the HTTP request, an optional Content-Type (PATCH strategies), and a bound on the response
 * body (a source cluster answering a TokenRequest with gigabytes fails the call instead).
 */
export function callOptions(o: { timeoutMs: number; signal?: AbortSignal; contentType?: string; maxResponseBytes?: number }): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          const deadline = AbortSignal.timeout(o.timeoutMs);
          ctx.setSignal(o.signal ? AbortSignal.any([deadline, o.signal]) : deadline);
          if (o.contentType) ctx.setHeaderParam('Content-Type', o.contentType);
          return new KubeObservable(Promise.resolve(ctx));
        },
        post: (r: ResponseContext) => new KubeObservable(Promise.resolve(boundedResponse(r, o.maxResponseBytes ?? RESPONSE_LIMITS.callBytes))),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** The response with a body read under a bound: a larger one fails the call (ResponseTooLargeError). */
function boundedResponse(r: ResponseContext, max: number): ResponseContext {
  const stream = r.body.stream();
  if (!stream) return r;
  let read: Promise<Buffer> | undefined;
  const binary = () => (read ??= readBytesAtMost(stream, max, `HTTP ${r.httpStatusCode} response`, 'fail'));
  const body: ResponseBody = { binary, text: async () => (await binary()).toString('utf8'), stream: () => null };
  return new ResponseContext(r.httpStatusCode, r.headers, body);
}

/** The HTTP status of a failed API call, if the server answered. */
export function httpStatus(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/** The server's Status message of a failed call, or the error message: one bounded line, never a token. */
export function apiErrorMessage(e: unknown): string {
  return describeError(e);
}
