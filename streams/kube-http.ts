// The controller's hot calls and watches over node:https / node:http2 with one connection pool
// per cluster and user: JSON in, JSON out, every body read under a bound. client-node stays the
// API of record for configuration and authentication (`applyToHTTPSOptions`: TLS material, bearer
// tokens, token files, exec plugins, the registrations' rotating token) and for types; its generic
// HTTP stack (undici fetch, web streams, the generated models' serializer) cost about a third of
// the controller's CPU per import (docs/adr/0024-lean-transport.md).
//
// A server that offers HTTP/2 (every kube-apiserver) gets one connection for everything: watches
// and calls are streams of it, so a registered cluster costs one TLS connection, not one per
// concurrent request plus one per watch. A server (or proxy) that speaks only HTTP/1.1 gets a
// keep-alive pool. Both share one TLS context per pool.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
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

/** An answer whose body the caller reads (and must read or abort): LIST pages, watch streams. */
interface KubeResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Readable;
}

type Agent = http.Agent | https.Agent;

/** A new connection that has not completed its TCP and TLS handshakes by then fails (as undici's connect timeout did). */
const CONNECT_TIMEOUT_MS = 10_000;

/** A pooled connection left unused this long is closed (the agent's socket timeout only closes free sockets, never one a request uses). */
const IDLE_SOCKET_MS = 60_000;

/**
 * After a request on an HTTP/2 connection is abandoned (its deadline, a silent watch), the
 * connection must answer a PING within this, else it is closed: a partitioned connection would
 * otherwise hold every later request of its cluster until each one's own deadline.
 */
const PING_TIMEOUT_MS = 5_000;

/** TLS options `applyToHTTPSOptions` may set: the pool's TLS context is made of them. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase'] as const;

/** One HTTP/2 connection and the requests it carries. */
interface Session {
  h2: http2.ClientHttp2Session;
  active: number;
  probing: boolean;
}

/** The pool's TLS: one context for every connection, made of the material it was built from. */
interface PoolTls {
  material: tls.SecureContextOptions;
  secureContext: tls.SecureContext;
  servername?: string;
  rejectUnauthorized: boolean;
}

/** The lean client of one KubeConfig's current cluster and user. */
class KubeHttp {
  /**
   * TLS as client-node resolved it, checked on every request: a client certificate that rotates
   * (a certificate file rewritten, an exec plugin's new certificate) gets a new context, and the
   * connections made with the old one take no new request.
   */
  private tls?: PoolTls;
  /** What the server chose when offered both; HTTP/2 until it answers otherwise. */
  private protocol: 'h2' | 'http/1.1' = 'h2';
  private agent?: Agent;
  private session?: Session;
  private connecting?: Promise<Session | undefined>;

  constructor(private readonly kc: KubeConfig) {}

  /** A JSON call; a non-2xx answer throws client-node's ApiException (status, Status body), as generated clients do. */
  async call(method: string, path: string, o: CallOptions): Promise<unknown> {
    const call = linkedSignal([o.signal], o.timeoutMs);
    const { signal } = call;
    try {
      const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
      const res = await this.send(method, path, o.query, signal, payload && { bytes: payload, contentType: o.contentType ?? 'application/json' });
      const status = res.statusCode;
      const ok = status >= 200 && status < 300;
      const body = await readBytesAtMost(res.body, ok ? (o.maxResponseBytes ?? RESPONSE_LIMITS.callBytes) : RESPONSE_LIMITS.errorBytes, `HTTP ${status} response`, ok ? 'fail' : 'truncate');
      if (!ok) throw new ApiException(status, `HTTP-Code: ${status}`, body.toString('utf8'), res.headers);
      return body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
    } catch (e) {
      if (call.timedOut()) throw new DeadlineExceeded(`no answer within ${o.timeoutMs / 1000} s (${o.what})`, { cause: e });
      throw e;
    } finally {
      call.release();
    }
  }

  /** A GET whose body is read by the caller (LIST pages, watch streams). */
  open(path: string, query: Record<string, string>, signal: AbortSignal): Promise<KubeResponse> {
    return this.send('GET', path, query, signal);
  }

  private async send(method: string, path: string, query: Record<string, string> | undefined, signal: AbortSignal, payload?: { bytes: Buffer; contentType: string }): Promise<KubeResponse> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    // Per request, as client-node does: tokens rotate (token files, exec plugins, registrations).
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = String(v);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    if (payload) {
      headers['content-type'] = payload.contentType;
      headers['content-length'] = String(payload.bytes.length);
    }
    // Aborted meanwhile (a cluster removed, a shutdown): no connection is started for it.
    signal.throwIfAborted();
    if (url.protocol === 'https:') this.tlsFor(url, opts);
    if (url.protocol === 'https:' && !cluster.proxyUrl) {
      if (this.protocol === 'h2') {
        const session = await whileNotAborted(this.h2(url), signal);
        if (session) return this.sendH2(session, method, url, headers, signal, payload?.bytes);
      }
    }
    this.agent ??= this.poolFor(url, opts, Boolean(cluster.proxyUrl));
    return this.sendH1(method, url, headers, signal, payload?.bytes);
  }

  /**
   * The pool's TLS for this request's material. When the material changed since the pool's
   * connections were made, a new context replaces it; the HTTP/2 connection finishes the
   * requests it carries and closes, and the keep-alive pool is replaced (its idle connections
   * close after IDLE_SOCKET_MS).
   */
  private tlsFor(url: URL, opts: https.RequestOptions): PoolTls {
    const material = materialOf(opts);
    if (this.tls && sameMaterial(this.tls.material, material)) return this.tls;
    if (this.tls) {
      const s = this.session;
      this.session = undefined;
      s?.h2.close();
      this.agent = undefined;
    }
    return (this.tls = tlsOf(url, opts, material));
  }

  private sendH1(method: string, url: URL, headers: Record<string, string>, signal: AbortSignal, payload?: Buffer): Promise<KubeResponse> {
    const request = (url.protocol === 'http:' ? http : https).request;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.agent, signal }, (res) => resolve({ statusCode: res.statusCode ?? 0, headers: headersOf(res.headers), body: res }));
      req.on('error', reject);
      req.once('socket', (socket) => {
        if (!socket.connecting) return; // a pooled connection
        const timer = setTimeout(() => req.destroy(new Error(`connect to ${url.host}: no ${url.protocol === 'http:' ? 'connection' : 'TLS handshake'} within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
        timer.unref();
        socket.once(url.protocol === 'http:' ? 'connect' : 'secureConnect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end(payload);
    });
  }

  private sendH2(s: Session, method: string, url: URL, headers: Record<string, string>, signal: AbortSignal, payload?: Buffer): Promise<KubeResponse> {
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = s.h2.request({ ...headers, ':method': method, ':path': url.pathname + url.search }, { signal, endStream: !payload });
      } catch (e) {
        // The connection closed between the check and the request.
        if (this.session === s) this.session = undefined;
        return reject(e as Error);
      }
      if (s.active++ === 0) s.h2.ref();
      let answered = false;
      const abandoned = () => {
        if (!answered || !stream.readableEnded) this.probe(s);
      };
      signal.addEventListener('abort', abandoned, { once: true });
      stream.once('close', () => {
        signal.removeEventListener('abort', abandoned);
        if (--s.active === 0) s.h2.unref();
        if (!answered) reject(new Error(`${url.host}: the HTTP/2 stream closed before an answer (code ${stream.rstCode})`));
      });
      stream.once('error', (e) => {
        if (!answered) reject(e);
      });
      stream.once('response', (h) => {
        answered = true;
        resolve({ statusCode: Number(h[':status'] ?? 0), headers: headersOf(h), body: stream });
      });
      if (payload) stream.end(payload);
    });
  }

  /** The live HTTP/2 connection, a new one, or undefined when the server chose HTTP/1.1 (then the pool is used). */
  private h2(url: URL): Promise<Session | undefined> {
    const s = this.session;
    if (s && !s.h2.closed && !s.h2.destroyed) return Promise.resolve(s);
    this.session = undefined;
    this.connecting ??= this.connect(url).finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private connect(url: URL): Promise<Session | undefined> {
    const t = this.tls!;
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: hostOf(url), port: Number(url.port || 443), secureContext: t.secureContext, rejectUnauthorized: t.rejectUnauthorized, ALPNProtocols: ['h2', 'http/1.1'], ...(t.servername ? { servername: t.servername } : {}) });
      const timer = setTimeout(() => socket.destroy(new Error(`connect to ${url.host}: no TLS handshake within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
      timer.unref();
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        if (t !== this.tls) {
          // The client certificate rotated during the handshake: connect again with the new one.
          socket.destroy();
          return resolve(this.connect(url));
        }
        if (socket.alpnProtocol !== 'h2') {
          // HTTP/1.1 only (a proxy in front of the API server, say): the keep-alive pool from now on.
          this.protocol = 'http/1.1';
          socket.destroy();
          return resolve(undefined);
        }
        // No server push (nothing here asks for it; a hostile source could fill memory with it).
        // What a source can make this process hold is bounded per stream by the flow-control
        // window and the readers' bounds (streams/bounded-body.ts), per connection by nghttp2's
        // session memory limit (10 MB by default).
        const h2 = http2.connect(url.origin, { createConnection: () => socket, settings: { enablePush: false } });
        const s: Session = { h2, active: 0, probing: false };
        h2.on('error', () => undefined); // each request sees its own failure
        const forget = () => {
          if (this.session === s) this.session = undefined;
        };
        h2.once('close', forget);
        h2.once('goaway', forget);
        h2.setTimeout(IDLE_SOCKET_MS, () => {
          if (s.active === 0) h2.close();
        });
        h2.unref(); // referenced while it carries a request
        this.session = s;
        resolve(s);
      });
    });
  }

  /** A request on `s` was abandoned: the connection answers a PING in time or is closed (all its requests fail, the next one reconnects). */
  private probe(s: Session): void {
    if (s.probing || s.h2.closed || s.h2.destroyed) return;
    s.probing = true;
    const timer = setTimeout(() => s.h2.destroy(new Error(`no answer to an HTTP/2 PING within ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS);
    timer.unref();
    const sent = s.h2.ping((err) => {
      clearTimeout(timer);
      s.probing = false;
      if (err) s.h2.destroy(err);
    });
    if (!sent) {
      clearTimeout(timer);
      s.probing = false;
    }
  }

  /**
   * The HTTP/1.1 keep-alive pool (a server without HTTP/2, or plain http). Through a proxy,
   * client-node's own agent for it.
   */
  private poolFor(url: URL, opts: https.RequestOptions, proxied: boolean): Agent {
    if (proxied && opts.agent instanceof http.Agent) return opts.agent;
    // Idle pooled connections close after a minute: a source is called a few times an hour per
    // import, and with hundreds of sources idle TLS connections would hold memory for nothing.
    const common = { keepAlive: true, keepAliveMsecs: 30_000, scheduling: 'lifo' as const, timeout: IDLE_SOCKET_MS };
    if (url.protocol === 'http:') return new http.Agent(common);
    const t = this.tls!; // send() resolved it for this request
    return new https.Agent({ ...common, secureContext: t.secureContext, rejectUnauthorized: t.rejectUnauthorized, ...(t.servername ? { servername: t.servername } : {}) });
  }
}

/** The TLS material client-node resolved for a request (CA, client certificate and key). */
function materialOf(opts: https.RequestOptions): tls.SecureContextOptions {
  const material: tls.SecureContextOptions = {};
  for (const k of TLS_KEYS) if (opts[k] !== undefined) (material as Record<string, unknown>)[k] = opts[k];
  return material;
}

/** Whether two requests' TLS material is the same (client-node reads files anew on each request: compared by content). */
function sameMaterial(a: tls.SecureContextOptions, b: tls.SecureContextOptions): boolean {
  return TLS_KEYS.every((k) => sameValue(a[k], b[k]));
}

/** One TLS option compared by content: a string, a Buffer, a list of them, or `{ pem, passphrase }`. */
function sameValue(x: unknown, y: unknown): boolean {
  if (Array.isArray(x) || Array.isArray(y)) return Array.isArray(x) && Array.isArray(y) && x.length === y.length && x.every((v, i) => sameValue(v, y[i]));
  if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
  if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) return JSON.stringify(x) === JSON.stringify(y);
  return x === y;
}

/** The pool's TLS: one context from `material`, the server name (SNI) unless the host is an address. */
function tlsOf(url: URL, opts: https.RequestOptions, material: tls.SecureContextOptions): PoolTls {
  const host = hostOf(url);
  const servername = opts.servername ?? (isIP(host) ? undefined : host);
  return { material, secureContext: tls.createSecureContext(material), rejectUnauthorized: opts.rejectUnauthorized !== false, ...(servername ? { servername } : {}) };
}

/** `p`, unless `signal` aborts first (the shared connection attempt goes on for the others). */
function whileNotAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined); // its failure is for its other waiters, if any, not an unhandled rejection
    return Promise.reject(signal.reason as Error);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Response headers as ApiException takes them: lists joined, HTTP/2 pseudo-headers (`:status`) left out. */
function headersOf(h: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !k.startsWith(':')) out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}

/** The URL's host as sockets take it (an IPv6 address without its brackets). */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

const clients = new WeakMap<KubeConfig, KubeHttp>();

/** The lean client of `kc` (one per KubeConfig object, so one connection pool per cluster and user). */
export function kubeHttp(kc: KubeConfig): KubeHttp {
  let c = clients.get(kc);
  if (!c) clients.set(kc, (c = new KubeHttp(kc)));
  return c;
}
