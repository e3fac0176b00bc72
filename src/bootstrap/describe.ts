// Turning errors and API objects into the one-line messages and tables the CLI prints. Pure.
import { redact } from '../logger.js';
import { readyCondition, type ServiceAccountImport } from '../api/import.js';
import { grantScope, parseGrants, type GrantScope } from '../consent/grants.js';

function statusMessage(body: unknown): string | undefined {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() === '' ? undefined : body.trim().split('\n')[0];
    }
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const m = (parsed as Record<string, unknown>).message;
    if (typeof m === 'string') return m;
  }
  return undefined;
}

/** Messages may carry a stack or a dump after the first line: never show it. */
function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? s;
}

/** The HTTP status of an API error (client-node's ApiException), if it is one. */
export function httpStatusOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as Record<string, unknown>).code;
  return typeof code === 'number' && 'body' in e ? code : undefined;
}

const HTTP_REASONS: Record<number, string> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  409: 'conflict',
  422: 'invalid',
  500: 'server error',
  503: 'service unavailable',
};

/**
 * One line for any error: the API server's Status message for API errors, the network cause
 * (ECONNREFUSED, certificate problems) for transport errors, the message otherwise. Never a stack,
 * and anything that looks like a token is redacted.
 */
export function describeError(e: unknown): string {
  let text: string;
  const status = httpStatusOf(e);
  if (status !== undefined) {
    const msg = statusMessage((e as { body: unknown }).body);
    text = `${HTTP_REASONS[status] ?? `HTTP ${status}`}${msg ? `: ${msg}` : ` (HTTP ${status})`}`;
  } else if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (e.message === 'fetch failed' && cause instanceof Error) {
      const code = (cause as Error & { code?: unknown }).code;
      text = typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
    } else text = firstLine(e.message);
  } else text = firstLine(String(e));
  const oneLine = text.replace(/\s*\n\s*/g, ' ').trim();
  return String(redact(oneLine));
}

/** How a ServiceAccountImport looks in `kubemcsa status`. */
export interface ImportRow {
  namespace: string;
  name: string;
  cluster: string;
  remote: string;
  ready: string;
  reason: string;
  message: string;
  expires: string;
}

export function importRow(sai: ServiceAccountImport): ImportRow {
  const c = readyCondition(sai);
  return {
    namespace: sai.metadata.namespace ?? '',
    name: sai.metadata.name,
    cluster: sai.spec.clusterName,
    remote: `${sai.spec.namespace}/${sai.spec.name}`,
    ready: c?.status ?? 'Unknown',
    reason: c?.reason ?? (c === undefined ? 'NotReconciled' : ''),
    message: c?.message ?? '',
    expires: sai.status?.expirationTimestamp ?? '',
  };
}

/** `in 42m`, `in 3h5m`, `2m ago`: how far `iso` is from `now`. */
export function relativeTime(iso: string, now: Date): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso === '' ? '-' : iso;
  const diff = t - now.getTime();
  const abs = Math.abs(diff);
  const s = Math.round(abs / 1000);
  const text = s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** A kubectl-style table: upper-case headers, columns padded with three spaces. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function registrationsTable(rows: ImportRow[], now: Date): string {
  if (rows.length === 0) return 'No registered clusters.\n';
  return formatTable(
    ['CLUSTER', 'IMPORTER', 'READY', 'REASON', 'EXPIRES', 'MESSAGE'],
    rows.map((r) => [r.name, r.remote, r.ready, r.reason, relativeTime(r.expires, now), r.message]),
  );
}

export function importsTable(rows: ImportRow[], now: Date): string {
  if (rows.length === 0) return 'No ServiceAccountImports.\n';
  return formatTable(
    ['NAMESPACE', 'NAME', 'CLUSTER', 'REMOTE', 'READY', 'REASON', 'EXPIRES'],
    rows.map((r) => [r.namespace, r.name, r.cluster, r.remote, r.ready, r.reason, relativeTime(r.expires, now)]),
  );
}

/** A grant this cluster gives as a source, as `kubemcsa status` shows it. */
export interface GrantRow {
  target: string;
  namespace: string;
  serviceAccount: string;
  scope: GrantScope;
}

/** The grants recorded on one importer ServiceAccount (named after its target cluster). */
export function grantRows(importer: { metadata: { name: string; annotations?: Record<string, string> | undefined } }): GrantRow[] {
  return parseGrants(importer.metadata.annotations)
    .map((g) => ({ target: importer.metadata.name, namespace: g.namespace, serviceAccount: g.serviceAccount, scope: grantScope(g) }))
    .sort((a, b) => `${a.namespace}/${a.serviceAccount}`.localeCompare(`${b.namespace}/${b.serviceAccount}`));
}

export function grantsTable(rows: GrantRow[]): string {
  if (rows.length === 0) return 'No grants.\n';
  return formatTable(
    ['TARGET', 'NAMESPACE', 'SERVICEACCOUNT', 'SCOPE'],
    rows.map((r) => [r.target, r.namespace, r.serviceAccount, r.scope]),
  );
}
