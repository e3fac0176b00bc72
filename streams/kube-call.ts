import { ApiException, Observable as KubeObservable, type ConfigurationOptions, type RequestContext, type ResponseContext } from '@kubernetes/client-node';
import { describeError } from '../src/describe-error.js';

/**
 * Per-call options for client-node's generated APIs: a deadline (and the caller's abort signal)
 * on the HTTP request, and an optional Content-Type (PATCH strategies).
 */
export function callOptions(o: { timeoutMs: number; signal?: AbortSignal; contentType?: string }): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          const deadline = AbortSignal.timeout(o.timeoutMs);
          ctx.setSignal(o.signal ? AbortSignal.any([deadline, o.signal]) : deadline);
          if (o.contentType) ctx.setHeaderParam('Content-Type', o.contentType);
          return new KubeObservable(Promise.resolve(ctx));
        },
        post: (r: ResponseContext) => new KubeObservable(Promise.resolve(r)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** The HTTP status of a failed API call, if the server answered. */
export function httpStatus(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/** The server's Status message of a failed call, or the error message: one bounded line, never a token. */
export function apiErrorMessage(e: unknown): string {
  return describeError(e);
}
