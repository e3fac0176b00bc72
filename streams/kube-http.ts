// The controller's hot calls and watches over node:https with a keep-alive pool per cluster and
// user: JSON in, JSON out, every body read under a bound. client-node stays the API of record for
// configuration and authentication (`applyToHTTPSOptions`: TLS material, bearer tokens, token
// files, exec plugins, the registrations' rotating token) and for types; its generic HTTP stack
// (undici fetch, web streams, the generated models' serializer) cost about a third of the
// controller's CPU per import (docs/adr/0024-lean-transport.md).
import http from 'node:http';
import https from 'node:https';
import { ApiException, type KubeConfig } from '@kubernetes/client-node';
import { readBytesAtMost, RESPONSE_LIMITS } from './bounded-body.js';
import { DeadlineExceeded } from './kube-call.js';
import { linkedSignal } from './linked-signal.js';

/** A request's bound: its deadline (and the caller's abort), what it is for (named in a deadline error). */
interface CallOptions {
  signal?: AbortSignal;
  timeoutMs: number;
  /** Names the call in a deadline error, e.g. `TokenRequest in cluster "c2"`. */
  what: string;
  query?: Record<string, string>;
  /** JSON body; sent with `contentType` (default `application/json`). */
  body?: unknown;
  contentType?: string;
  /** Responses larger than this fail the call. Default RESPONSE_LIMITS.callBytes. */
  maxResponseBytes?: number;
}

type Agent = http.Agent | https.Agent;

/** A new connection that has not completed its TCP and TLS handshakes by then fails (as undici's connect timeout did). */
const CONNECT_TIMEOUT_MS = 10_000;

/** A pooled connection left unused this long is closed (the agent's socket timeout only closes free sockets, never one a request uses). */
const IDLE_SOCKET_MS = 60_000;

/** TLS options `applyToHTTPSOptions` may set, copied into the pool's agent. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** The lean client of one KubeConfig's current cluster and user. */
class KubeHttp {
  private agent?: Agent;

  constructor(private readonly kc: KubeConfig) {}

  /** A JSON call; a non-2xx answer throws client-node's ApiException (status, Status body), as generated clients do. */
  async call(method: string, path: string, o: CallOptions): Promise<unknown> {
    const call = linkedSignal([o.signal], o.timeoutMs);
    const { signal } = call;
    try {
      const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
      const res = await this.send(method, path, o.query, signal, payload && { bytes: payload, contentType: o.contentType ?? 'application/json' });
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 300;
      const body = await readBytesAtMost(res, ok ? (o.maxResponseBytes ?? RESPONSE_LIMITS.callBytes) : RESPONSE_LIMITS.errorBytes, `HTTP ${status} response`, ok ? 'fail' : 'truncate');
      if (!ok) throw new ApiException(status, `HTTP-Code: ${status}`, body.toString('utf8'), headersOf(res));
      return body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
    } catch (e) {
      if (call.timedOut()) throw new DeadlineExceeded(`no answer within ${o.timeoutMs / 1000} s (${o.what})`, { cause: e });
      throw e;
    } finally {
      call.release();
    }
  }

  /** A GET whose body is read by the caller (LIST pages, watch streams): the response, status and stream. */
  open(path: string, query: Record<string, string>, signal: AbortSignal): Promise<http.IncomingMessage> {
    return this.send('GET', path, query, signal);
  }

  private async send(method: string, path: string, query: Record<string, string> | undefined, signal: AbortSignal, payload?: { bytes: Buffer; contentType: string }): Promise<http.IncomingMessage> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    // Per request, as client-node does: tokens rotate (token files, exec plugins, registrations).
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    this.agent ??= this.poolFor(cluster.server, opts, Boolean(cluster.proxyUrl));
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const headers: http.OutgoingHttpHeaders = { ...(opts.headers as http.OutgoingHttpHeaders | undefined), Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = payload.contentType;
      headers['Content-Length'] = payload.bytes.length;
    }
    const request = (url.protocol === 'http:' ? http : https).request;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.agent, signal, ...(opts.auth ? { auth: opts.auth } : {}) }, resolve);
      req.on('error', reject);
      req.once('socket', (socket) => {
        if (!socket.connecting) return; // a pooled connection
        const timer = setTimeout(() => req.destroy(new Error(`connect to ${url.host}: no ${url.protocol === 'http:' ? 'connection' : 'TLS handshake'} within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
        timer.unref();
        socket.once(url.protocol === 'http:' ? 'connect' : 'secureConnect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end(payload?.bytes);
    });
  }

  /**
   * One keep-alive pool per KubeConfig (one cluster and user): TLS material as client-node
   * resolved it on the first request. Through a proxy, client-node's own agent for it.
   */
  private poolFor(server: string, opts: https.RequestOptions, proxied: boolean): Agent {
    if (proxied && opts.agent instanceof http.Agent) return opts.agent;
    const tls: https.AgentOptions = {};
    for (const k of TLS_KEYS) if (opts[k] !== undefined) (tls as Record<string, unknown>)[k] = opts[k];
    // Idle pooled connections close after a minute: a source is called a few times an hour per
    // import, and with hundreds of sources idle TLS connections would hold memory for nothing.
    const common = { keepAlive: true, keepAliveMsecs: 30_000, scheduling: 'lifo' as const, timeout: IDLE_SOCKET_MS };
    return server.startsWith('http:') ? new http.Agent(common) : new https.Agent({ ...common, ...tls });
  }
}

function headersOf(res: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

const clients = new WeakMap<KubeConfig, KubeHttp>();

/** The lean client of `kc` (one per KubeConfig object, so one connection pool per cluster and user). */
export function kubeHttp(kc: KubeConfig): KubeHttp {
  let c = clients.get(kc);
  if (!c) clients.set(kc, (c = new KubeHttp(kc)));
  return c;
}
