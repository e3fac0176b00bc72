import { HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, Watch, type KubeConfig } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { decode } from '../src/api/decode.js';
import { classifyWatchError, describeError, type WatchEnd } from './watch-policy.js';

/** One page of a LIST. */
export interface ListPage {
  items: unknown[];
  resourceVersion: string;
  continueToken?: string;
  /** `apiVersion` of the items (list objects omit it on each item). */
  apiVersion?: string;
  /** `kind` of the items (the list kind without its `List` suffix). */
  kind?: string;
}

/** Called with each watch event as client-node parsed it. */
export type WatchEventHandler = (type: string, object: unknown) => void;

/**
 * The two requests a list+watch loop makes. The default talks to a real API server through
 * client-node; the loop only depends on this interface.
 */
export interface ListWatchTransport {
  list(path: string, query: Record<string, string>, signal: AbortSignal): Promise<ListPage>;
  /** Resolves when the watch ends, however it ends. `onConnected` runs once the stream is open. */
  watch(path: string, query: Record<string, string>, onEvent: WatchEventHandler, onConnected: () => void, signal: AbortSignal): Promise<WatchEnd>;
}

/** An HTTP error from the API server, with the Status message when there is one. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly statusCode: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

const ListEnvelope = t.type({
  apiVersion: t.union([t.string, t.undefined]),
  kind: t.union([t.string, t.undefined]),
  metadata: t.type({
    resourceVersion: t.string,
    continue: t.union([t.string, t.undefined]),
  }),
  items: t.union([t.array(t.unknown), t.null]),
});

const StatusBody = t.partial({ message: t.string, reason: t.string, code: t.number });

async function send(kc: KubeConfig, url: URL, signal: AbortSignal): Promise<{ status: number; text: string }> {
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  ctx.setHeaderParam('Accept', 'application/json');
  ctx.setSignal(signal);
  await kc.applySecurityAuthentication(ctx);
  const response = await new IsomorphicFetchHttpLibrary().send(ctx).toPromise();
  return { status: response.httpStatusCode, text: await response.body.text() };
}

function apiErrorFrom(status: number, text: string, what: string): ApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = decode(StatusBody, parsed);
  const message = body.ok && body.value.message ? body.value.message : text.slice(0, 200) || `HTTP ${status}`;
  const reason = body.ok ? body.value.reason : undefined;
  return new ApiError(`${what}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`, status, reason);
}

function itemKind(listKind: string | undefined): string | undefined {
  return listKind?.endsWith('List') ? listKind.slice(0, -'List'.length) : undefined;
}

/** The transport used in production: raw LIST through client-node's HTTP stack, WATCH through its `Watch`. */
export function kubeTransport(kc: KubeConfig): ListWatchTransport {
  return {
    async list(path, query, signal) {
      const cluster = kc.getCurrentCluster();
      if (!cluster) throw new Error('the kubeconfig has no current cluster');
      const url = new URL(cluster.server.replace(/\/+$/, '') + path);
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      const { status, text } = await send(kc, url, signal);
      if (status !== 200) throw apiErrorFrom(status, text, `list ${path}`);
      const body = decode(ListEnvelope, JSON.parse(text) as unknown);
      if (!body.ok) throw new Error(`list ${path}: unexpected response: ${body.problems.join('; ')}`);
      const list = body.value;
      return {
        items: list.items ?? [],
        resourceVersion: list.metadata.resourceVersion,
        ...(list.metadata.continue ? { continueToken: list.metadata.continue } : {}),
        ...(list.apiVersion ? { apiVersion: list.apiVersion } : {}),
        ...(itemKind(list.kind) ? { kind: itemKind(list.kind) } : {}),
      };
    },

    watch(path, query, onEvent, onConnected, signal) {
      return new Promise<WatchEnd>((resolve) => {
        let settled = false;
        let controller: AbortController | undefined;
        const finish = (end: WatchEnd) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          controller?.abort();
          resolve(end);
        };
        const onAbort = () => finish({ kind: 'stopped' });
        if (signal.aborted) return finish({ kind: 'stopped' });
        signal.addEventListener('abort', onAbort, { once: true });
        new Watch(kc)
          .watch(
            path,
            query,
            (type: string, object: unknown) => {
              if (!settled) onEvent(type, object);
            },
            (err: unknown) => finish(classifyWatchError(err)),
          )
          .then(
            (c) => {
              controller = c;
              // `watch()` resolves after the response headers; if done was not called, the stream is open.
              if (settled) c.abort();
              else onConnected();
            },
            (err: unknown) => finish({ kind: 'failed', message: describeError(err) }),
          );
      });
    },
  };
}
