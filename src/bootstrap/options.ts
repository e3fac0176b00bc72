// Decoding and validating what the user typed. Commander parses argv into raw option objects;
// these codecs and checks turn them into typed options or a UsageError naming the flag.
import * as t from 'io-ts';
import { decode } from '../api/decode.js';
import { dns1123LabelError, dns1123SubdomainError } from '../naming.js';
import { UsageError } from './errors.js';

const str = t.union([t.string, t.undefined]);
const bool = t.union([t.boolean, t.undefined]);

export const ClusterFlags = t.partial({
  targetContext: str,
  targetKubeconfig: str,
  targetName: str,
  sourceContext: str,
  sourceKubeconfig: str,
  sourceName: str,
});

export const BootstrapFlags = t.intersection([
  ClusterFlags,
  t.partial({ sourceServer: str, sourceNamespaces: str, dryRun: bool, wait: bool, timeout: str }),
]);

export const UnbootstrapFlags = t.intersection([ClusterFlags, t.partial({ wait: bool, timeout: str })]);

export const ExportFlags = t.partial({
  namespace: str,
  context: str,
  kubeconfig: str,
  as: str,
  duration: str,
  audience: t.union([t.array(t.string), t.undefined]),
  output: str,
  server: str,
});

export const KubeconfigFlags = t.partial({ namespace: str, context: str, kubeconfig: str });
export const StatusFlags = t.partial({ context: str, kubeconfig: str, output: str });

/** Which kubeconfig file and context to use; both default as kubectl's do. */
export interface ClusterSelector {
  kubeconfig?: string;
  context?: string;
}

export interface NamedClusterSelector extends ClusterSelector {
  /** Explicit cluster name; else the selected context's cluster name. */
  name?: string;
}

export interface BootstrapOptions {
  target: NamedClusterSelector;
  source: NamedClusterSelector;
  sourceServer?: string;
  sourceNamespaces?: string[];
  dryRun: boolean;
  wait: boolean;
  timeoutMs: number;
}

export interface UnbootstrapOptions {
  target: NamedClusterSelector;
  source: NamedClusterSelector;
  wait: boolean;
  timeoutMs: number;
}

export type OutputFormat = 'yaml' | 'json';

export interface ExportOptions extends ClusterSelector {
  serviceAccount: string;
  namespace?: string;
  secretName: string;
  expirationSeconds: number;
  audiences: string[];
  output: OutputFormat;
  server?: string;
}

export interface KubeconfigOptions extends ClusterSelector {
  importName: string;
  namespace?: string;
}

export interface StatusOptions extends ClusterSelector {
  output: 'table' | OutputFormat;
}

export const DEFAULT_TIMEOUT = '2m';
export const DEFAULT_EXPORT_DURATION = '1h';
/** The TokenRequest API's minimum lifetime. */
export const MIN_TOKEN_SECONDS = 600;

function decodeFlags<A, O>(codec: t.Type<A, O, unknown>, raw: unknown): A {
  const r = decode(codec, raw);
  if (!r.ok) throw new UsageError(`invalid options: ${r.problems.join('; ')}`);
  return r.value;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration as Go and kubectl write them (`90s`, `2m`, `1h30m`, `500ms`) or plain seconds; in ms. */
export function parseDuration(s: string, flag: string): number {
  const v = s.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const part = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let end = 0;
  for (let m = part.exec(v); m !== null; m = part.exec(v)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = part.lastIndex;
  }
  if (v === '' || end !== v.length) throw new UsageError(`invalid ${flag} ${JSON.stringify(s)}: expected a duration such as 90s, 2m or 1h30m`);
  return Math.round(total);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function checkName(value: string | undefined, flag: string, kind: 'label' | 'subdomain'): string | undefined {
  const v = nonEmpty(value);
  if (v === undefined) {
    if (value !== undefined) throw new UsageError(`${flag} must not be empty`);
    return undefined;
  }
  const why = kind === 'label' ? dns1123LabelError(v) : dns1123SubdomainError(v);
  if (why !== undefined) throw new UsageError(`invalid ${flag} ${JSON.stringify(v)}: it ${why}`);
  return v;
}

/** `a, b,,a` → `[a, b]`; each a namespace name (DNS-1123 label). */
export function parseNamespaceList(s: string, flag: string): string[] {
  const names = [...new Set(s.split(',').map((x) => x.trim()).filter((x) => x !== ''))];
  if (names.length === 0) throw new UsageError(`${flag} needs at least one namespace`);
  for (const n of names) checkName(n, `namespace ${JSON.stringify(n)} in ${flag}`, 'label');
  return names;
}

/** An API server URL: https with a host. */
export function parseServerUrl(s: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(s.trim());
  } catch {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(s)}: not a URL`);
  }
  if (url.protocol !== 'https:' || url.hostname === '') throw new UsageError(`invalid ${flag} ${JSON.stringify(s)}: expected https://host[:port]`);
  return s.trim().replace(/\/+$/, '');
}

function clusterSelectors(f: t.TypeOf<typeof ClusterFlags>): { target: NamedClusterSelector; source: NamedClusterSelector } {
  const sel = (kubeconfig: string | undefined, context: string | undefined, name: string | undefined, role: string): NamedClusterSelector => {
    const out: NamedClusterSelector = {};
    const kc = nonEmpty(kubeconfig);
    if (kc !== undefined) out.kubeconfig = kc;
    else if (kubeconfig !== undefined) throw new UsageError(`--${role}-kubeconfig must not be empty`);
    const ctx = nonEmpty(context);
    if (ctx !== undefined) out.context = ctx;
    else if (context !== undefined) throw new UsageError(`--${role}-context must not be empty`);
    const n = checkName(name, `--${role}-name`, 'subdomain');
    if (n !== undefined) out.name = n;
    return out;
  };
  return {
    target: sel(f.targetKubeconfig, f.targetContext, f.targetName, 'target'),
    source: sel(f.sourceKubeconfig, f.sourceContext, f.sourceName, 'source'),
  };
}

export function parseBootstrapOptions(raw: unknown): BootstrapOptions {
  const f = decodeFlags(BootstrapFlags, raw);
  return {
    ...clusterSelectors(f),
    ...(f.sourceServer !== undefined ? { sourceServer: parseServerUrl(f.sourceServer, '--source-server') } : {}),
    ...(f.sourceNamespaces !== undefined ? { sourceNamespaces: parseNamespaceList(f.sourceNamespaces, '--source-namespaces') } : {}),
    dryRun: f.dryRun ?? false,
    wait: f.wait ?? false,
    timeoutMs: parseDuration(f.timeout ?? DEFAULT_TIMEOUT, '--timeout'),
  };
}

export function parseUnbootstrapOptions(raw: unknown): UnbootstrapOptions {
  const f = decodeFlags(UnbootstrapFlags, raw);
  return { ...clusterSelectors(f), wait: f.wait ?? false, timeoutMs: parseDuration(f.timeout ?? DEFAULT_TIMEOUT, '--timeout') };
}

function selector(f: { kubeconfig?: string | undefined; context?: string | undefined }): ClusterSelector {
  const out: ClusterSelector = {};
  const kc = nonEmpty(f.kubeconfig);
  if (kc !== undefined) out.kubeconfig = kc;
  else if (f.kubeconfig !== undefined) throw new UsageError('--kubeconfig must not be empty');
  const ctx = nonEmpty(f.context);
  if (ctx !== undefined) out.context = ctx;
  else if (f.context !== undefined) throw new UsageError('--context must not be empty');
  return out;
}

function parseOutput<F extends string>(value: string | undefined, allowed: readonly F[], fallback: F): F {
  const v = value ?? fallback;
  const found = allowed.find((a) => a === v);
  if (found === undefined) throw new UsageError(`invalid --output ${JSON.stringify(v)}: expected one of ${allowed.join(', ')}`);
  return found;
}

export function parseExportOptions(name: unknown, raw: unknown): ExportOptions {
  const f = decodeFlags(ExportFlags, raw);
  const sa = checkName(typeof name === 'string' ? name : undefined, 'ServiceAccount name', 'subdomain');
  if (sa === undefined) throw new UsageError('missing the ServiceAccount NAME argument');
  const namespace = checkName(f.namespace, '--namespace', 'label');
  const secretName = checkName(f.as, '--as', 'subdomain') ?? sa;
  const durationMs = parseDuration(f.duration ?? DEFAULT_EXPORT_DURATION, '--duration');
  if (durationMs % 1000 !== 0 || durationMs / 1000 < MIN_TOKEN_SECONDS) {
    throw new UsageError(`invalid --duration ${JSON.stringify(f.duration)}: a token lives at least ${MIN_TOKEN_SECONDS} s (10m), in whole seconds`);
  }
  const audiences = (f.audience ?? []).map((a) => a.trim());
  if (audiences.some((a) => a === '')) throw new UsageError('--audience must not be empty');
  return {
    ...selector(f),
    serviceAccount: sa,
    ...(namespace !== undefined ? { namespace } : {}),
    secretName,
    expirationSeconds: durationMs / 1000,
    audiences: [...new Set(audiences)],
    output: parseOutput(f.output, ['yaml', 'json'] as const, 'yaml'),
    ...(f.server !== undefined ? { server: parseServerUrl(f.server, '--server') } : {}),
  };
}

export function parseKubeconfigOptions(name: unknown, raw: unknown): KubeconfigOptions {
  const f = decodeFlags(KubeconfigFlags, raw);
  const importName = checkName(typeof name === 'string' ? name : undefined, 'import name', 'subdomain');
  if (importName === undefined) throw new UsageError('missing the IMPORT argument');
  const namespace = checkName(f.namespace, '--namespace', 'label');
  return { ...selector(f), importName, ...(namespace !== undefined ? { namespace } : {}) };
}

export function parseStatusOptions(raw: unknown): StatusOptions {
  const f = decodeFlags(StatusFlags, raw);
  return { ...selector(f), output: parseOutput(f.output, ['table', 'yaml', 'json'] as const, 'table') };
}
