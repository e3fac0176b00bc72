import { AsyncLocalStorage } from 'node:async_hooks';
import {
  createConfiguration,
  KubernetesObjectApi,
  Observable as KubeObservable,
  ResponseContext,
  ServerConfiguration,
  type Configuration,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseBody,
} from '@kubernetes/client-node';
import { readBytesAtMost, RESPONSE_LIMITS } from './bounded-body.js';
import { linkedSignal } from './linked-signal.js';

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

/** The abort signal of the call under way in this async context (see {@link withDeadline}). */
const currentCall = new AsyncLocalStorage<AbortSignal>();

/** Middleware that puts the current call's signal on every request it makes, and bounds every response body. */
const signalFromContext = {
  pre: (ctx: RequestContext) => {
    const signal = currentCall.getStore();
    if (signal) ctx.setSignal(signal);
    return new KubeObservable(Promise.resolve(ctx));
  },
  post: (r: ResponseContext) => new KubeObservable(Promise.resolve(boundedResponse(r, RESPONSE_LIMITS.callBytes))),
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
  const call = linkedSignal([signal], timeoutMs);
  try {
    return await currentCall.run(call.signal, fn);
  } catch (e) {
    if (call.timedOut()) throw new DeadlineExceeded(`no answer within ${timeoutMs / 1000} s (${what})`, { cause: e });
    throw e;
  } finally {
    call.release();
  }
}

