import type { KubeConfig } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { decode } from '../src/api/decode.js';
import { boundedLines, readAtMost, RESPONSE_LIMITS } from './bounded-body.js';
import { describeError } from '../src/describe-error.js';
import { kubeHttp } from './kube-http.js';
import { linkedSignal } from './linked-signal.js';
import { watchIdleDeadlineMs, type WatchEnd } from './watch-policy.js';

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
type WatchEventHandler = (type: string, object: unknown) => void;

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

/** Bounds on what the transport reads from a server (RESPONSE_LIMITS by default). */
interface TransportLimits {
  listBytes: number;
  eventBytes: number;
  errorBytes: number;
  /** A watch with no bytes for this long (connecting included; less up to 30 % at random, `watchIdleDeadlineMs`) ends as `idle`. */
  watchIdleMs: number;
  /** A LIST page not read in full by then fails. */
  listTimeoutMs: number;
}

const DEFAULT_TRANSPORT_LIMITS: TransportLimits = { ...RESPONSE_LIMITS, watchIdleMs: 30_000, listTimeoutMs: 60_000 };


function apiErrorFrom(status: number, text: string, what: string): ApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = decode(StatusBody, parsed);
  // Not cut here: a cut could split a token in two that redaction then misses. The one describer
  // (src/describe-error.ts) bounds and redacts it; the body itself was read under a bound.
  const message = body.ok && body.value.message ? body.value.message : text || `HTTP ${status}`;
  const reason = body.ok ? body.value.reason : undefined;
  return new ApiError(`${what}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`, status, reason);
}

function itemKind(listKind: string | undefined): string | undefined {
  return listKind?.endsWith('List') ? listKind.slice(0, -'List'.length) : undefined;
}

/** Parses one watch line (`{"type": …, "object": …}`); anything else ends the watch as failed. */
function watchEvent(line: string, what: string): { type: string; object: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`${what}: a watch event that is not JSON`);
  }
  const e = parsed as { type?: unknown; object?: unknown } | null;
  if (typeof e?.type !== 'string') throw new Error(`${what}: a watch event without a type`);
  return { type: e.type, object: e.object };
}

/**
 * The transport used in production: LIST and WATCH through the lean client (streams/kube-http.ts: client-node's TLS and
 * auth), with every body read under a bound (`limits`): a LIST page or a watch event over its
 * bound aborts the request and fails it with a message saying so.
 */
export function kubeTransport(kc: KubeConfig, limits: Partial<TransportLimits> = {}): ListWatchTransport {
  const l = { ...DEFAULT_TRANSPORT_LIMITS, ...limits };
  return {
    async list(path, query, signal) {
      const what = `list ${path}`;
      const request = linkedSignal([signal], l.listTimeoutMs);
      let text: string;
      try {
        const response = await kubeHttp(kc).open(path, query, request.signal);
        const status = response.statusCode;
        if (status !== 200) throw apiErrorFrom(status, await readAtMost(response.body, l.errorBytes, what, 'truncate'), what);
        text = await readAtMost(response.body, l.listBytes, what, 'fail');
      } catch (e) {
        if (request.timedOut()) throw new Error(`${what}: no answer within ${l.listTimeoutMs / 1000} s`, { cause: e });
        throw e;
      } finally {
        request.release();
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error(`${what}: a response that is not JSON`);
      }
      const body = decode(ListEnvelope, json);
      if (!body.ok) throw new Error(`${what}: unexpected response: ${body.problems.join('; ')}`);
      const list = body.value;
      return {
        items: list.items ?? [],
        resourceVersion: list.metadata.resourceVersion,
        ...(list.metadata.continue ? { continueToken: list.metadata.continue } : {}),
        ...(list.apiVersion ? { apiVersion: list.apiVersion } : {}),
        ...(itemKind(list.kind) ? { kind: itemKind(list.kind) } : {}),
      };
    },

    async watch(path, query, onEvent, onConnected, signal) {
      const what = `watch ${path}`;
      if (signal.aborted) return { kind: 'stopped' };
      const request = new AbortController();
      const linked = linkedSignal([signal, request.signal]);
      let idle = false;
      let timer: NodeJS.Timeout | undefined;
      const idleMs = watchIdleDeadlineMs(l.watchIdleMs);
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          idle = true;
          request.abort();
        }, idleMs);
        timer.unref();
      };
      try {
        arm();
        const response = await kubeHttp(kc).open(path, { ...query, watch: 'true' }, linked.signal);
        const status = response.statusCode;
        if (status !== 200) {
          const e = apiErrorFrom(status, await readAtMost(response.body, l.errorBytes, what, 'truncate'), what);
          return e.statusCode === 410 ? { kind: 'expired', message: describeError(e) } : { kind: 'failed', message: describeError(e), statusCode: e.statusCode };
        }
        arm();
        onConnected();
        for await (const line of boundedLines(response.body, l.eventBytes, what, arm)) {
          const { type, object } = watchEvent(line, what);
          onEvent(type, object);
        }
        return { kind: 'closed' };
      } catch (e) {
        if (signal.aborted) return { kind: 'stopped' };
        if (idle) return { kind: 'idle' };
        return { kind: 'failed', message: describeError(e) };
      } finally {
        clearTimeout(timer);
        request.abort();
        linked.release();
      }
    },
  };
}
