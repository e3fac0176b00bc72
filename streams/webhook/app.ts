import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../../src/logger.js';
import { serializeReview } from '../../src/webhook/admission.js';
import { clipMessage } from '../../src/webhook/review.js';
import type { WebhookMetrics } from './metrics.js';
import type { AdmissionOutcome, AdmissionPipeline } from './pipeline.js';

const MUTATE_PODS_PATH = '/mutate-pods';
/**
 * 3.5 MiB. The API server accepts request bodies of at most 3 MiB (and etcd stores objects of at
 * most 1.5 MiB), so no pod it admits makes a larger AdmissionReview than its own request plus the
 * review's envelope (uid, kind, userInfo, options): half a MiB of headroom covers that. Anything
 * bigger can only come from a caller other than the API server, and is refused before parsing.
 * (controller-runtime's 7 MiB would let such a caller make the webhook parse twice as much.)
 */
export const DEFAULT_MAX_BODY_BYTES = 3.5 * 1024 * 1024;

/**
 * At most this many `{`, `[` and `,` bytes in a body (counted before parsing, strings included).
 * JSON.parse costs per value, not per byte: 3.5 MiB of `{},{},…` is a million objects and blocks
 * the event loop for 100–300 ms; 100,000 costs 10–20 ms. A realistic pod has one such byte per
 * ~19 bytes (the benchmark's Deployment pod), so 100,000 covers pods of ~1.8 MiB — more than etcd
 * stores (1.5 MiB).
 */
const DEFAULT_MAX_JSON_TOKENS = 100_000;

/**
 * Counts `{`, `[` and `,` bytes in `buf`, stopping once past `limit`. Dense text is counted in
 * one pass (~1 ms for the 300 KB a body of `{},{},…` needs to pass 100,000); sparse text (long
 * strings) with native searches per byte kind, which skip it much faster than a loop: 0.27 ms
 * against 3.9 ms for 3.4 MiB of one string or of spaces (the hostile stream's oversized bodies).
 */
export function countJsonTokens(buf: Buffer, limit: number): number {
  const probe = Math.min(buf.length, 1024);
  let n = 0;
  for (let i = 0; i < probe; i++) {
    const c = buf[i];
    if ((c === 0x7b || c === 0x5b || c === 0x2c) && ++n > limit) return n;
  }
  if (probe === buf.length) return n;
  const rest = buf.subarray(probe);
  if (n >= 16) {
    for (let i = 0; i < rest.length; i++) {
      const c = rest[i];
      if ((c === 0x7b || c === 0x5b || c === 0x2c) && ++n > limit) return n;
    }
    return n;
  }
  for (const byte of [0x7b, 0x5b, 0x2c]) {
    for (let i = rest.indexOf(byte); i !== -1; i = rest.indexOf(byte, i + 1)) if (++n > limit) return n;
  }
  return n;
}

interface AppOptions {
  pipeline: AdmissionPipeline;
  metrics: WebhookMetrics;
  log: Logger;
  maxBodyBytes?: number;
  /** See DEFAULT_MAX_JSON_TOKENS. */
  maxJsonTokens?: number;
  /** True once shutdown began: responses ask the client to close the connection. */
  draining?: () => boolean;
}

/** A Kubernetes-style Status body for HTTP errors (what kubectl and curl users expect). */
function statusBody(code: number, message: string) {
  const reason = code === 400 ? 'BadRequest' : code === 404 ? 'NotFound' : code === 405 ? 'MethodNotAllowed' : code === 413 ? 'RequestEntityTooLarge' : code === 415 ? 'UnsupportedMediaType' : 'InternalError';
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code };
}

function sendError(res: Response, code: number, message: string): void {
  if (res.headersSent) return;
  res.status(code).json(statusBody(code, message));
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

interface HttpError {
  status?: unknown;
  statusCode?: unknown;
  message?: unknown;
}

/** Body errors carry a 4xx status; anything else is ours. */
function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as HttpError;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  return status !== undefined && status >= 400 && status < 500 ? status : undefined;
}

function describeClientError(err: HttpError, status: number): string {
  return typeof err.message === 'string' && err.message !== '' ? err.message : `bad request (${status})`;
}

class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads and parses the JSON body (instead of express.json, which decodes through iconv and
 * handles encodings an API server never sends): identity encoding and UTF-8 only, `limit` bytes
 * at most (checked against Content-Length first, then while reading).
 */
function readJsonBody(limit: number, maxTokens: number) {
  return (req: Request, next: (err: BodyError | undefined, body?: unknown) => void) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity') return next(new BodyError(415, `unsupported request encoding: Content-Encoding ${JSON.stringify(encoding)} (send the JSON uncompressed)`));
    const charset = /;\s*charset=("?)([^";]+)\1/i.exec(req.headers['content-type'] ?? '')?.[2]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return next(new BodyError(415, `unsupported request encoding: charset ${JSON.stringify(charset)} (expected utf-8)`));
    const declared = Number(req.headers['content-length'] ?? NaN);
    // Refused bodies are not read to their end: the answer closes the connection instead.
    if (declared > limit) return next(new BodyError(413, `request body is larger than the limit of ${limit} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    let tokens = 0;
    let failed = false;
    const fail = (message: string) => {
      failed = true;
      chunks.length = 0;
      next(new BodyError(413, message));
    };
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) return fail(`request body is larger than the limit of ${limit} bytes`);
      // Counted as the chunks arrive: a body of a million values is refused after its first ~100,000.
      tokens += countJsonTokens(c, maxTokens - tokens);
      if (tokens > maxTokens) return fail(`request body holds more than ${maxTokens} JSON objects, arrays and elements: no pod the API server can store is that large`);
      chunks.push(c);
    });
    req.once('error', (e) => {
      if (failed) return;
      failed = true;
      next(new BodyError(400, `cannot read the request body: ${e.message}`));
    });
    req.once('end', () => {
      if (failed) return;
      if (size === 0) return next(new BodyError(400, 'request body is empty: expected an admission.k8s.io/v1 AdmissionReview'));
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      let body: unknown;
      try {
        body = JSON.parse(bytes.toString('utf8')) as unknown;
      } catch (e) {
        return next(new BodyError(400, `request body is not valid JSON: ${(e as Error).message}`));
      }
      next(undefined, body);
    });
  };
}

/**
 * The webhook's Express app: `POST /mutate-pods` only. Body hygiene (content type, size, JSON) is
 * checked here; everything about the AdmissionReview itself happens in the pipeline.
 */
export function createWebhookApp(opts: AppOptions): express.Express {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const webhook = MUTATE_PODS_PATH;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  const { metrics } = opts;
  /** The admission outcome of an answered review, as `mcsa_webhook_admission_duration_seconds` labels it (set by respond). */
  const outcomeOf = new WeakMap<Response, 'mutated' | 'allowed' | 'denied'>();

  const respond = (res: Response, outcome: AdmissionOutcome): void => {
    if (outcome.kind === 'bad-request') {
      opts.log.info('bad admission request', { reason: clipMessage(outcome.message) });
      sendError(res, 400, outcome.message);
      return;
    }
    if (outcome.kind === 'internal-error') {
      sendError(res, 500, outcome.message);
      return;
    }
    const r = outcome.response;
    const mutated = r.allowed && outcome.mutated;
    metrics.decisions.inc({ webhook, decision: r.allowed ? 'allowed' : 'denied', mutated: String(mutated) });
    outcomeOf.set(res, mutated ? 'mutated' : r.allowed ? 'allowed' : 'denied');
    if (!r.allowed) opts.log.info('pod denied', { uid: clipMessage(r.uid, 128), namespace: outcome.namespace, reason: clipMessage(r.status?.message ?? '') });
    else if (r.warnings) opts.log.info('pod admitted with warnings', { uid: r.uid, namespace: outcome.namespace, warnings: r.warnings });
    const bytes = serializeReview(r);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
    res.end(bytes);
  };
  const readBody = readJsonBody(limit, opts.maxJsonTokens ?? DEFAULT_MAX_JSON_TOKENS);

  // One route for the webhook path, in the order a request meets them: metrics, method, content
  // type, body, then the pipeline. Not a middleware per step: three more Express layers cost
  // 5–67 µs per request in paired runs (docs/benchmarks.md), where the throughput target has no
  // margin to spare.
  app.all(webhook, (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    metrics.inFlight.inc({ webhook });
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      metrics.inFlight.dec({ webhook });
      metrics.requests.inc({ webhook, code: String(res.statusCode) });
      const seconds = (performance.now() - started) / 1000;
      metrics.latency.observe({ webhook }, seconds);
      metrics.admissionDuration.observe({ outcome: res.statusCode === 200 ? (outcomeOf.get(res) ?? 'allowed') : 'rejected' }, seconds);
    };
    res.once('finish', record);
    res.once('close', record);
    if (opts.draining?.()) res.setHeader('Connection', 'close');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendError(res, 405, `method ${req.method} not allowed on ${webhook}: use POST`);
      return;
    }
    if (mediaType(req.headers['content-type']) !== 'application/json') {
      sendError(res, 400, `unsupported Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')}: expected application/json`);
      return;
    }
    readBody(req, (err, body) => {
      if (err) return next(err);
      opts.pipeline
        .admit(body)
        .then((outcome) => respond(res, outcome))
        .catch(next);
    });
  });

  app.use((req: Request, res: Response) => sendError(res, 404, `no handler for ${req.method} ${req.path}`));

  // Express 5 routes rejected promises and thrown errors here. Four parameters mark it as the error handler.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = clientErrorStatus(err);
    if (status === 413 && !res.headersSent) {
      // The rest of the body is not worth decrypting: stop reading, answer, and the server closes
      // the connection once the answer is written (Connection: close).
      req.pause();
      res.setHeader('Connection', 'close');
    }
    if (status !== undefined) {
      sendError(res, status, describeClientError(err as HttpError, status));
      return;
    }
    opts.log.error('webhook request failed', { error: err });
    sendError(res, 500, 'internal error');
  });
  return app;
}
