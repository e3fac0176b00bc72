// Decoding and validating what the user typed. Commander parses argv into raw option objects;
// these codecs and checks turn them into typed options or a UsageError naming the flag.
import * as t from 'io-ts';
import { decode } from '../api/decode.js';
import { MAX_EXPIRATION_SECONDS } from '../api/import.js';
import { parseDuration } from '../duration.js';
import { dns1123LabelError, dns1123SubdomainError } from '../naming.js';
import { UsageError } from './errors.js';
import { ALL, type Grant } from '../consent/grants.js';
import { checkGrantable } from './grant.js';
import { DEFAULT_REGISTRATION_SECONDS } from './plan.js';

const str = t.union([t.string, t.undefined]);
const bool = t.union([t.boolean, t.undefined]);

const ClusterFlags = t.partial({
  targetContext: str,
  targetKubeconfig: str,
  targetName: str,
  sourceContext: str,
  sourceKubeconfig: str,
  sourceName: str,
});

const BootstrapFlags = t.intersection([
  ClusterFlags,
  t.partial({ sourceServer: str, sourceNamespaces: str, registrationDuration: str, dryRun: bool, wait: bool, timeout: str, output: str }),
]);

const UnbootstrapFlags = t.intersection([ClusterFlags, t.partial({ wait: bool, timeout: str, dryRun: bool })]);

const FederateFlags = t.intersection([
  ClusterFlags,
  t.partial({ sourceServer: str, audience: str, discoveryUrl: str, allowAnonymousDiscovery: bool, authenticationConfig: str, refreshKeys: bool, dryRun: bool, output: str }),
]);

const UnfederateFlags = t.intersection([ClusterFlags, t.partial({ authenticationConfig: str, dryRun: bool })]);

const ExportFlags = t.partial({
  namespace: str,
  context: str,
  kubeconfig: str,
  as: str,
  duration: str,
  audience: t.union([t.array(t.string), t.undefined]),
  output: str,
  server: str,
});

const GrantFlags = t.intersection([
  ClusterFlags,
  t.partial({ namespace: str, allServiceAccounts: bool, clusterWide: bool, dryRun: bool, federated: bool, role: str }),
]);

const KubeconfigFlags = t.partial({ namespace: str, context: str, kubeconfig: str });
const StatusFlags = t.partial({ context: str, kubeconfig: str, output: str });

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
  /** Lifetime of the registration's tokens (spec.expirationSeconds of the registration). */
  registrationSeconds: number;
  dryRun: boolean;
  /** With dryRun: print the objects bootstrap applies in this format instead of the plan's steps. */
  output?: OutputFormat;
  wait: boolean;
  timeoutMs: number;
}

export interface UnbootstrapOptions {
  target: NamedClusterSelector;
  source: NamedClusterSelector;
  /** Read both clusters and report every deletion, sending none. */
  dryRun: boolean;
  wait: boolean;
  timeoutMs: number;
}

/** `kubemcsa federate`: let the source's API server trust the target's ServiceAccount issuer (ADR 0022). */
export interface FederateOptions {
  target: NamedClusterSelector;
  source: NamedClusterSelector;
  /** The source API server URL as the target's pods reach it (default: the source kubeconfig's). */
  sourceServer?: string;
  /** The audience the source accepts (default: multicluster.admiralty.io/<source name>). */
  audience?: string;
  /** Where the source fetches the issuer's discovery document, when not under the issuer URL. */
  discoveryUrl?: string;
  allowAnonymousDiscovery: boolean;
  /** The source API server's AuthenticationConfiguration file to merge the entry into. */
  authenticationConfig?: string;
  /**
   * Rewrite that file even when the entry is unchanged (a new comment line), so that the source's
   * API server rebuilds its JWT authenticators and fetches the target's keys again (after the
   * target rotated its ServiceAccount signing key). Needs `authenticationConfig`.
   */
  refreshKeys: boolean;
  dryRun: boolean;
  /** Format of the printed JWT authenticator entry. */
  output: OutputFormat;
}

/** `kubemcsa unfederate`: remove the record from the target (and the entry from a given file). */
export interface UnfederateOptions {
  target: NamedClusterSelector;
  source: NamedClusterSelector;
  authenticationConfig?: string;
  dryRun: boolean;
}

/** `kubemcsa grant` and `kubemcsa revoke`: one grant, in the source only. */
export interface GrantOptions {
  source: ClusterSelector;
  /** The target: its name, or the context whose cluster name it is (never contacted). */
  target: NamedClusterSelector;
  grant: Grant;
  dryRun: boolean;
  /** A grant to a federated target: a RoleBinding of this ClusterRole to the mapped identity, nothing else. */
  federated?: { role: string };
}

type OutputFormat = 'yaml' | 'json';

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
const MIN_TOKEN_SECONDS = 600;
export const DEFAULT_REGISTRATION_DURATION = `${DEFAULT_REGISTRATION_SECONDS / 3600}h`;
/** The longest registration token bootstrap asks for (7 days, the import API's maximum). */
const MAX_REGISTRATION_SECONDS = MAX_EXPIRATION_SECONDS;

function decodeFlags<A, O>(codec: t.Type<A, O, unknown>, raw: unknown): A {
  const r = decode(codec, raw);
  if (!r.ok) throw new UsageError(`invalid options: ${r.problems.join('; ')}`);
  return r.value;
}

/** A duration flag in the one grammar (src/duration.ts), as a usage error naming the flag; in ms. */
function parseDurationFlag(s: string, flag: string): number {
  try {
    return parseDuration(s, flag);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** A token lifetime: whole seconds, at least the TokenRequest minimum (10m), at most `maxSeconds`. */
function parseTokenSeconds(s: string, flag: string, maxSeconds?: number): number {
  const ms = parseDurationFlag(s, flag);
  const range = maxSeconds === undefined ? `at least ${MIN_TOKEN_SECONDS} s (10m)` : `from ${MIN_TOKEN_SECONDS} s (10m) to ${maxSeconds} s (${maxSeconds / 3600}h)`;
  if (ms % 1000 !== 0 || ms / 1000 < MIN_TOKEN_SECONDS || (maxSeconds !== undefined && ms / 1000 > maxSeconds)) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(s)}: a token lives ${range}, in whole seconds`);
  }
  return ms / 1000;
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
function parseNamespaceList(s: string, flag: string): string[] {
  const names = [...new Set(s.split(',').map((x) => x.trim()).filter((x) => x !== ''))];
  if (names.length === 0) throw new UsageError(`${flag} needs at least one namespace`);
  for (const n of names) checkName(n, `namespace ${JSON.stringify(n)} in ${flag}`, 'label');
  return names;
}

/** `s` as a URL, or a UsageError naming the flag. */
function parseUrl(s: string, flag: string): URL {
  try {
    return new URL(s.trim());
  } catch {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(s)}: not a URL`);
  }
}

/** An API server URL: https with a host. */
function parseServerUrl(s: string, flag: string): string {
  const url = parseUrl(s, flag);
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
    registrationSeconds: parseTokenSeconds(f.registrationDuration ?? DEFAULT_REGISTRATION_DURATION, '--registration-duration', MAX_REGISTRATION_SECONDS),
    dryRun: f.dryRun ?? false,
    ...(f.output !== undefined ? { output: bootstrapOutput(f.output, f.dryRun ?? false) } : {}),
    wait: f.wait ?? false,
    timeoutMs: parseDurationFlag(f.timeout ?? DEFAULT_TIMEOUT, '--timeout'),
  };
}

/** `bootstrap -o`: only with --dry-run (a real run prints progress, and the Secret it writes holds a token). */
function bootstrapOutput(v: string, dryRun: boolean): OutputFormat {
  if (!dryRun) throw new UsageError('--output needs --dry-run: it prints the objects bootstrap would apply');
  return parseOutput(v, ['yaml', 'json'] as const, 'yaml');
}

export function parseUnbootstrapOptions(raw: unknown): UnbootstrapOptions {
  const f = decodeFlags(UnbootstrapFlags, raw);
  if (f.dryRun && f.wait) throw new UsageError('--wait and --dry-run exclude each other: a dry run deletes nothing to wait for');
  return { ...clusterSelectors(f), dryRun: f.dryRun ?? false, wait: f.wait ?? false, timeoutMs: parseDurationFlag(f.timeout ?? DEFAULT_TIMEOUT, '--timeout') };
}

/** Any https URL (an issuer's discovery URL may have a path). */
function parseHttpsUrl(s: string, flag: string): string {
  const url = parseUrl(s, flag);
  if (url.protocol !== 'https:' || url.hostname === '' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(s)}: expected https://host[:port][/path], without credentials, query or fragment`);
  }
  return s.trim();
}

function nonEmptyFlag(value: string | undefined, flag: string): string | undefined {
  const v = nonEmpty(value);
  if (v === undefined && value !== undefined) throw new UsageError(`${flag} must not be empty`);
  return v;
}

export function parseFederateOptions(raw: unknown): FederateOptions {
  const f = decodeFlags(FederateFlags, raw);
  const audience = nonEmptyFlag(f.audience, '--audience');
  const authenticationConfig = nonEmptyFlag(f.authenticationConfig, '--authentication-config');
  if (f.refreshKeys === true && authenticationConfig === undefined) {
    throw new UsageError("--refresh-keys rewrites the source API server's configuration file: give --authentication-config FILE");
  }
  return {
    ...clusterSelectors(f),
    ...(f.sourceServer !== undefined ? { sourceServer: parseServerUrl(f.sourceServer, '--source-server') } : {}),
    ...(audience !== undefined ? { audience } : {}),
    ...(f.discoveryUrl !== undefined ? { discoveryUrl: parseHttpsUrl(f.discoveryUrl, '--discovery-url') } : {}),
    allowAnonymousDiscovery: f.allowAnonymousDiscovery ?? false,
    ...(authenticationConfig !== undefined ? { authenticationConfig } : {}),
    refreshKeys: f.refreshKeys ?? false,
    dryRun: f.dryRun ?? false,
    output: parseOutput(f.output, ['yaml', 'json'] as const, 'yaml'),
  };
}

export function parseUnfederateOptions(raw: unknown): UnfederateOptions {
  const f = decodeFlags(UnfederateFlags, raw);
  const authenticationConfig = nonEmptyFlag(f.authenticationConfig, '--authentication-config');
  return { ...clusterSelectors(f), ...(authenticationConfig !== undefined ? { authenticationConfig } : {}), dryRun: f.dryRun ?? false };
}

/**
 * Grant and revoke: exactly one of a ServiceAccount NAME (with -n), --all-service-accounts (with
 * -n) or --cluster-wide (without -n); kube-system and the install namespace are refused.
 */
export function parseGrantOptions(name: unknown, raw: unknown): GrantOptions {
  const f = decodeFlags(GrantFlags, raw);
  const { target, source } = clusterSelectors(f);
  if (f.sourceName !== undefined) throw new UsageError('--source-name is not used by grant and revoke (they only talk to the source)');
  if (target.name === undefined && target.context === undefined && target.kubeconfig === undefined) {
    throw new UsageError('name the target cluster with --target-name (or --target-context/--target-kubeconfig, whose cluster name is used)');
  }
  const sa = checkName(typeof name === 'string' ? name : undefined, 'ServiceAccount name', 'subdomain');
  const chosen = [sa !== undefined, f.allServiceAccounts === true, f.clusterWide === true].filter(Boolean).length;
  if (chosen !== 1) throw new UsageError('give exactly one of a SERVICEACCOUNT argument, --all-service-accounts or --cluster-wide');
  const namespace = checkName(f.namespace, '--namespace', 'label');
  let grant: Grant;
  if (f.clusterWide === true) {
    if (namespace !== undefined) throw new UsageError('--cluster-wide covers every namespace: it takes no --namespace');
    grant = { namespace: ALL, serviceAccount: ALL };
  } else {
    if (namespace === undefined) throw new UsageError(`missing --namespace: the namespace of ${sa !== undefined ? `ServiceAccount ${sa}` : 'the ServiceAccounts'} in the source`);
    grant = { namespace, serviceAccount: sa ?? ALL };
  }
  checkGrantable(grant);
  const role = nonEmpty(f.role);
  if (f.federated !== true && f.role !== undefined) throw new UsageError('--role is for federated grants: add --federated');
  if (f.federated === true) {
    if (grant.namespace === ALL) throw new UsageError('--federated binds per namespace: give -n NAMESPACE (SERVICEACCOUNT or --all-service-accounts), not --cluster-wide');
    if (role === undefined) throw new UsageError('--federated needs --role CLUSTERROLE: the ClusterRole to bind to the federated identity in the source namespace');
    if (role.includes('/') || role.includes('%') || role === '.' || role === '..') throw new UsageError(`invalid --role ${JSON.stringify(role)}: not a ClusterRole name`);
    return { source, target, grant, dryRun: f.dryRun ?? false, federated: { role } };
  }
  return { source, target, grant, dryRun: f.dryRun ?? false };
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
  const expirationSeconds = parseTokenSeconds(f.duration ?? DEFAULT_EXPORT_DURATION, '--duration');
  const audiences = (f.audience ?? []).map((a) => a.trim());
  if (audiences.some((a) => a === '')) throw new UsageError('--audience must not be empty');
  return {
    ...selector(f),
    serviceAccount: sa,
    ...(namespace !== undefined ? { namespace } : {}),
    secretName,
    expirationSeconds,
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
