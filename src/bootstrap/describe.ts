// Turning errors and API objects into the one-line messages and tables the CLI prints. Pure.
import { describeError as describeAnyError, httpStatusOf } from '../describe-error.js';
import { isFederatedSpec, readyCondition, type ServiceAccountImport } from '../api/import.js';
import { grantScope, parseGrants, type GrantScope } from '../consent/grants.js';

/**
 * One line for any error, as the CLI prints it (`forbidden: <message>`): the project's one
 * describer (src/describe-error.ts), bounded and redacted.
 */
export function describeError(e: unknown): string {
  return describeAnyError(e, { status: 'reason' });
}

export { httpStatusOf };

/** How a ServiceAccountImport looks in `kubemcsa status`. */
interface ImportRow {
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
    remote: isFederatedSpec(sai.spec) ? '(federated)' : `${sai.spec.namespace}/${sai.spec.name}`,
    ready: c?.status ?? 'Unknown',
    reason: c?.reason ?? (c === undefined ? 'NotReconciled' : ''),
    message: c?.message ?? '',
    expires: sai.status?.expirationTimestamp ?? '',
  };
}

/** `in 42m`, `in 3h5m`, `2m ago`: how far `iso` is from `now`. */
function relativeTime(iso: string, now: Date): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso === '' ? '-' : iso;
  const diff = t - now.getTime();
  const abs = Math.abs(diff);
  const s = Math.round(abs / 1000);
  const text = s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** A kubectl-style table: upper-case headers, columns padded with three spaces. */
function formatTable(headers: string[], rows: string[][]): string {
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

/** One federated source record and whether the source accepts this cluster's pod tokens (`kubemcsa status`). */
export interface FederationRow {
  source: string;
  server: string;
  audience: string;
  /** `yes` (the source mapped the probe token to `user`), `no` (HTTP 401), or `unknown` (see `detail`). */
  accepted: 'yes' | 'no' | 'unknown';
  user?: string;
  detail: string;
}

export function federationTable(rows: FederationRow[]): string {
  if (rows.length === 0) return 'No federated sources.\n';
  return formatTable(
    ['SOURCE', 'SERVER', 'AUDIENCE', 'ACCEPTED', 'DETAIL'],
    rows.map((r) => [r.source, r.server, r.audience, r.accepted, r.detail]),
  );
}
