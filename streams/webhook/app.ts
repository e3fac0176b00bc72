import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../../src/logger.js';
import { reviewResponse } from '../../src/webhook/admission.js';
import type { WebhookMetrics } from './metrics.js';
import type { AdmissionPipeline } from './pipeline.js';

export const MUTATE_PODS_PATH = '/mutate-pods';
/** controller-runtime's maxRequestSize: pods with large specs still fit. */
export const DEFAULT_MAX_BODY_BYTES = 7 * 1024 * 1024;

export interface AppOptions {
  pipeline: AdmissionPipeline;
  metrics: WebhookMetrics;
  log: Logger;
  maxBodyBytes?: number;
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
  type?: unknown;
  message?: unknown;
}

/** body-parser errors carry a 4xx status; anything else is ours. */
function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as HttpError;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  return status !== undefined && status >= 400 && status < 500 ? status : undefined;
}

function describeClientError(err: HttpError, status: number, limit: number): string {
  if (err.type === 'entity.too.large') return `request body is larger than the limit of ${limit} bytes`;
  if (err.type === 'entity.parse.failed') return `request body is not valid JSON: ${String(err.message)}`;
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') return `unsupported request encoding: ${String(err.message)}`;
  return typeof err.message === 'string' && err.message !== '' ? err.message : `bad request (${status})`;
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

  app.use(webhook, (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    opts.metrics.inFlight.inc({ webhook });
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      opts.metrics.inFlight.dec({ webhook });
      opts.metrics.requests.inc({ webhook, code: String(res.statusCode) });
      opts.metrics.latency.observe({ webhook }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    res.once('finish', record);
    res.once('close', record);
    if (opts.draining?.()) res.setHeader('Connection', 'close');
    next();
  });

  app.post(
    webhook,
    (req: Request, res: Response, next: NextFunction) => {
      const type = mediaType(req.headers['content-type']);
      if (type !== 'application/json') {
        sendError(res, 400, `unsupported Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')}: expected application/json`);
        return;
      }
      if (req.headers['content-length'] === '0') {
        sendError(res, 400, 'request body is empty: expected an admission.k8s.io/v1 AdmissionReview');
        return;
      }
      next();
    },
    express.json({ limit, type: () => true, strict: false }),
    async (req: Request, res: Response) => {
      const body: unknown = req.body;
      if (body === undefined) {
        sendError(res, 400, 'request body is empty: expected an admission.k8s.io/v1 AdmissionReview');
        return;
      }
      const outcome = await opts.pipeline.admit(body);
      if (outcome.kind === 'bad-request') {
        opts.log.info('bad admission request', { reason: outcome.message });
        sendError(res, 400, outcome.message);
        return;
      }
      if (outcome.kind === 'internal-error') {
        sendError(res, 500, outcome.message);
        return;
      }
      const r = outcome.response;
      opts.metrics.decisions.inc({ webhook, decision: r.allowed ? 'allowed' : 'denied', mutated: String(outcome.mutated) });
      if (!r.allowed) opts.log.info('pod denied', { uid: r.uid, namespace: outcome.namespace, reason: r.status?.message });
      else if (r.warnings) opts.log.info('pod admitted with warnings', { uid: r.uid, namespace: outcome.namespace, warnings: r.warnings });
      res.status(200).json(reviewResponse(r));
    },
  );

  app.all(webhook, (req: Request, res: Response) => {
    res.setHeader('Allow', 'POST');
    sendError(res, 405, `method ${req.method} not allowed on ${webhook}: use POST`);
  });
  app.use((req: Request, res: Response) => sendError(res, 404, `no handler for ${req.method} ${req.path}`));

  // Express 5 routes rejected promises and thrown errors here. Four parameters mark it as the error handler.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = clientErrorStatus(err);
    if (status !== undefined) {
      sendError(res, status, describeClientError(err as HttpError, status, limit));
      return;
    }
    opts.log.error('webhook request failed', { error: err });
    sendError(res, 500, 'internal error');
  });
  return app;
}
