import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ApiException,
  createConfiguration,
  KubernetesObjectApi,
  Observable as KubeObservable,
  ServerConfiguration,
  type Configuration,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

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

/** The abort signal of the call under way in this async context (see {@link withDeadline}). */
const currentCall = new AsyncLocalStorage<AbortSignal>();

/** Middleware that puts the current call's signal on every request it makes. */
const signalFromContext = {
  pre: (ctx: RequestContext) => {
    const signal = currentCall.getStore();
    if (signal) ctx.setSignal(signal);
    return new KubeObservable(Promise.resolve(ctx));
  },
  post: (r: ResponseContext) => new KubeObservable(Promise.resolve(r)),
};

/**
 * A generated API client (or `KubernetesObjectApi`) for `kc`'s current cluster whose requests
 * carry the deadline of the {@link withDeadline} call they are made in: a deadline aborts the
 * HTTP request itself, it does not merely stop waiting for it.
 */
export function apiClient<T>(kc: KubeConfig, type: new (config: Configuration) => T): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    middleware: [signalFromContext],
  });
  const client = new type(config);
  // What KubernetesObjectApi.makeApiClient does: objects without a namespace go to the context's.
  if (client instanceof KubernetesObjectApi) (client as unknown as { setDefaultNamespace(k: KubeConfig): void }).setDefaultNamespace(kc);
  return client;
}

/** A call that ran past its deadline (its requests were aborted). */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}

/**
 * Runs `fn` (API calls through {@link apiClient} clients) under a deadline: at `timeoutMs` every
 * request it has in flight is aborted and the call fails with {@link DeadlineExceeded} naming
 * `what`. An outer `signal` (Ctrl-C, shutdown) aborts it too.
 */
export async function withDeadline<T>(timeoutMs: number, what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([deadline, signal]) : deadline;
  try {
    return await currentCall.run(combined, fn);
  } catch (e) {
    if (deadline.aborted) throw new DeadlineExceeded(`no answer within ${timeoutMs / 1000} s (${what})`, { cause: e });
    throw e;
  }
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
