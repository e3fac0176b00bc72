import { ApiException, Observable as KubeObservable, type ConfigurationOptions, type RequestContext, type ResponseContext } from '@kubernetes/client-node';

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

/** The server's Status message of a failed call, or the error message; never a token. */
export function apiErrorMessage(e: unknown): string {
  if (e instanceof ApiException) {
    const body = e.body as unknown;
    let message: string | undefined;
    if (typeof body === 'string') {
      try {
        message = (JSON.parse(body) as { message?: string }).message;
      } catch {
        message = body.slice(0, 300);
      }
    } else if (body && typeof body === 'object') {
      message = (body as { message?: string }).message;
    }
    return `HTTP ${e.code}${message ? `: ${message}` : ''}`;
  }
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    return `${e.message}${cause}`;
  }
  return String(e);
}
