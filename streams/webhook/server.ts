import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { filter, firstValueFrom, fromEvent, NEVER, takeUntil, type Subscription } from 'rxjs';
import type express from 'express';
import type { Logger } from '../../src/logger.js';
import { checkServingMaterial, fingerprint, type ServingMaterial } from '../../src/tls/serving.js';
import type { CertificateSource } from './certs.js';
import type { WebhookMetrics } from './metrics.js';

interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port`, `:port` (all interfaces) or `[v6]:port`. */
export function parseAddress(s: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`invalid address ${JSON.stringify(s)}: expected host:port or :port`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

interface ServerOptions {
  app: express.Express;
  listen: HostPort;
  metricsListen: HostPort;
  certificates: CertificateSource;
  metrics: WebhookMetrics;
  log: Logger;
  /** Readiness beyond the certificate (the import cache synced). */
  ready: () => boolean;
  /** Timeouts aligned with controller-runtime / Pepr. */
  keepAliveTimeoutMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/**
 * The HTTPS admission server and the plain-HTTP metrics/health server. The serving certificate is
 * hot-reloaded with `setSecureContext` (established connections keep theirs; new handshakes get
 * the new one), so a rotation never drops a request.
 */
export class WebhookServer {
  private https: https.Server | undefined;
  private plain: http.Server | undefined;
  private certSub: Subscription | undefined;
  private draining = false;
  private loaded: ServingMaterial | undefined;

  constructor(private readonly opts: ServerOptions) {}

  get isDraining(): boolean {
    return this.draining;
  }

  get webhookPort(): number {
    return (this.https?.address() as AddressInfo | null)?.port ?? 0;
  }

  get metricsPort(): number {
    return (this.plain?.address() as AddressInfo | null)?.port ?? 0;
  }

  isReady(): boolean {
    return !this.draining && this.loaded !== undefined && this.https?.listening === true && this.opts.ready();
  }

  /** Starts the metrics/health server at once, and the HTTPS server once a certificate is available. */
  async start(signal?: AbortSignal): Promise<void> {
    this.plain = http.createServer((req, res) => void this.serveOps(req, res));
    this.plain.keepAliveTimeout = 5000;
    await listen(this.plain, this.opts.metricsListen);
    this.opts.log.info('metrics and health listening', { address: `${this.opts.metricsListen.host}:${this.metricsPort}` });

    this.opts.certificates.start();
    const aborted = signal ? fromEvent(signal, 'abort') : NEVER;
    const first = await firstValueFrom(
      this.opts.certificates.material$.pipe(
        filter((m): m is ServingMaterial => m !== undefined),
        takeUntil(aborted),
      ),
      { defaultValue: undefined },
    );
    if (!first || signal?.aborted) return;
    this.use(first);
    this.https = https.createServer({ cert: first.certPem, key: first.keyPem, minVersion: 'TLSv1.2' }, this.opts.app);
    this.https.keepAliveTimeout = this.opts.keepAliveTimeoutMs ?? 90_000;
    this.https.headersTimeout = this.opts.headersTimeoutMs ?? 32_000;
    this.https.requestTimeout = this.opts.requestTimeoutMs ?? 60_000;
    this.https.on('tlsClientError', (err) => this.opts.log.debug('TLS handshake failed', { error: err.message }));
    this.certSub = this.opts.certificates.material$.subscribe((m) => {
      if (m && m !== this.loaded && this.https) this.reload(m);
    });
    await listen(this.https, this.opts.listen);
    this.opts.log.info('webhook listening', { address: `${this.opts.listen.host}:${this.webhookPort}` });
  }

  private use(m: ServingMaterial): void {
    const { notAfter } = checkServingMaterial(m);
    this.loaded = m;
    this.opts.metrics.certificateNotAfter.set(notAfter.getTime() / 1000);
    this.opts.metrics.certificateReloads.inc();
  }

  private reload(m: ServingMaterial): void {
    try {
      this.https!.setSecureContext({ cert: m.certPem, key: m.keyPem, minVersion: 'TLSv1.2' });
      this.use(m);
      this.opts.log.info('serving certificate reloaded', { fingerprint: fingerprint(m.certPem) });
    } catch (e) {
      this.opts.log.error('cannot load the new serving certificate; keeping the current one', { error: (e as Error).message });
    }
  }

  private async serveOps(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const text = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    try {
      if (path === '/metrics') text(200, await this.opts.metrics.registry.metrics(), this.opts.metrics.registry.contentType);
      else if (path === '/healthz') text(200, 'ok\n');
      else if (path === '/readyz') {
        if (this.isReady()) text(200, 'ok\n');
        else {
          const why = this.draining ? 'shutting down' : !this.loaded ? 'no serving certificate yet' : !this.opts.ready() ? 'import cache not synced' : 'not listening yet';
          text(503, `not ready: ${why}\n`);
        }
      } else text(404, 'not found\n');
    } catch (e) {
      this.opts.log.error('ops endpoint failed', { path, error: (e as Error).message });
      text(500, 'internal error\n');
    }
  }

  /** Stops accepting connections, lets in-flight requests finish (up to `timeoutMs`), then closes everything. */
  async shutdown(timeoutMs = 25_000): Promise<void> {
    this.draining = true;
    this.certSub?.unsubscribe();
    this.opts.certificates.stop();
    const server = this.https;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
    }
    const plain = this.plain;
    if (plain) {
      const closed = new Promise<void>((resolve) => plain.close(() => resolve()));
      plain.closeAllConnections();
      await closed;
    }
  }
}

function listen(server: http.Server | https.Server, at: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
