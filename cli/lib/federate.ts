// `kubemcsa federate` and `kubemcsa unfederate` (ADR 0022): the trust between a target's
// ServiceAccount issuer and a source's API server. federate reads the issuer, checks that a
// source can fetch its discovery document and keys without credentials (opening them with
// --allow-anonymous-discovery), writes the federated source record in the target, prints the
// JWT authenticator entry and merges it into a given AuthenticationConfiguration file.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { stringify } from 'yaml';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { CliError } from '../../src/bootstrap/errors.js';
import { describeError } from '../../src/bootstrap/describe.js';
import type { FederateOptions, UnfederateOptions } from '../../src/bootstrap/options.js';
import type { Permission } from '../../src/bootstrap/permissions.js';
import { describeRef, namespaceManifest, refOf } from '../../src/bootstrap/plan.js';
import { loopbackServerWarning } from '../../src/bootstrap/server-url.js';
import {
  formatAuthenticationConfiguration,
  jwtAuthenticatorFor,
  looksLikeJson,
  mergeJwtAuthenticator,
  parseAuthenticationConfiguration,
  removeJwtAuthenticator,
  type AuthenticationConfiguration,
  type JwtAuthenticator,
} from '../../src/federation/authenticator.js';
import { discoveryUrlOf, judgeAnonymousAnswer, type DiscoveryVerdict } from '../../src/federation/discovery.js';
import { defaultFederatedAudience, federatedPrefix } from '../../src/federation/identity.js';
import { anonymousDiscoveryBinding, federatedRecordManifest, federatedRecordName } from '../../src/federation/record.js';
import { anonymousGet, readIssuerDiscovery } from '../../streams/issuer-discovery.js';
import type { ClusterClient } from './cluster.js';
import type { Output } from './output.js';
import { allChecks, checkPermissions, checkReachable, deleteIfOurs, ensureNamespace, pollUntil, resolveClusters } from './shared.js';

/** How long one anonymous GET of the issuer may take. */
const ANONYMOUS_GET_TIMEOUT_MS = 10_000;
/** How long RBAC may take to let anonymous callers in after the binding is created. */
const ANONYMOUS_GRANT_WAIT_MS = 30_000;

function targetPermissions(allowAnonymousDiscovery: boolean): Permission[] {
  const applyable = (group: string, resource: string, namespace?: string): Permission[] =>
    ['create', 'patch'].map((verb) => ({ verb, group, resource, ...(namespace ? { namespace } : {}) }));
  return [
    { verb: 'get', group: '', resource: 'namespaces' },
    ...applyable('', 'configmaps', INSTALL_NAMESPACE),
    ...(allowAnonymousDiscovery ? applyable('rbac.authorization.k8s.io', 'clusterrolebindings') : []),
  ];
}

/** The discovery document and JWKS, fetched as a source's API server will: no credentials, the target's CA. */
async function anonymousVerdict(discoveryUrl: string, jwksUri: string, caPem: string): Promise<DiscoveryVerdict> {
  const d = judgeAnonymousAnswer('discovery', discoveryUrl, await anonymousGet(discoveryUrl, caPem, ANONYMOUS_GET_TIMEOUT_MS));
  if (!d.ok) return d;
  return judgeAnonymousAnswer('JWKS', jwksUri, await anonymousGet(jwksUri, caPem, ANONYMOUS_GET_TIMEOUT_MS));
}

/** Binds the issuer discovery ClusterRole to anonymous callers in the target (with a warning); false on a dry run. */
async function openAnonymousDiscovery(target: ClusterClient, dryRun: boolean, out: Output): Promise<boolean> {
  const binding = anonymousDiscoveryBinding();
  out.progress(
    `warning: --allow-anonymous-discovery: binding ClusterRole system:service-account-issuer-discovery to group system:unauthenticated in ${target.label}: ` +
      'anyone who reaches its API server can read the issuer discovery document and public keys (nothing else)',
  );
  if (dryRun) {
    out.progress(`${target.tag} would apply ${describeRef(refOf(binding))}`);
    return false;
  }
  const r = await target.apply(binding);
  out.progress(`${target.tag} ${describeRef(refOf(binding))}: ${r.outcome}`);
  return true;
}

/**
 * Checks anonymous access to the issuer; with `allow`, opens it (a ClusterRoleBinding, with a
 * warning) and waits for RBAC to let anonymous callers in. An unreachable issuer is only a
 * warning (the source's API server may reach what this machine cannot); with `allow`, the
 * binding is then made unchecked.
 */
async function ensureAnonymousDiscovery(target: ClusterClient, urls: { discovery: string; jwks: string }, caPem: string, opts: FederateOptions, out: Output): Promise<void> {
  const first = await anonymousVerdict(urls.discovery, urls.jwks, caPem);
  if (first.ok) {
    out.progress(`${target.tag} issuer discovery and JWKS readable without credentials`);
    return;
  }
  if (first.reason === 'unreachable') {
    out.progress(`warning: ${first.message}; the source's API server must reach it (see docs/federation.md, network reachability)`);
    // Whether anonymous callers are refused cannot be told from here: open discovery if asked to, unchecked.
    if (opts.allowAnonymousDiscovery) await openAnonymousDiscovery(target, opts.dryRun, out);
    else out.progress(`warning: cannot tell from here whether ${target.label} lets anonymous callers read them; if it refuses them, add --allow-anonymous-discovery`);
    return;
  }
  if (first.reason !== 'refused' || !opts.allowAnonymousDiscovery) throw new CliError(`${target.label}: ${first.message}`);
  if (!(await openAnonymousDiscovery(target, opts.dryRun, out))) return;
  let last: DiscoveryVerdict = first;
  await pollUntil(
    async () => {
      last = await anonymousVerdict(urls.discovery, urls.jwks, caPem);
      return last.ok || last.reason !== 'refused' ? true : undefined;
    },
    Date.now() + ANONYMOUS_GRANT_WAIT_MS,
    () => `${target.label}: still refused after ${ANONYMOUS_GRANT_WAIT_MS / 1000} s: ${last.ok ? '' : last.message}`,
  );
  if (!last.ok) throw new CliError(`${target.label}: ${last.message}`);
  out.progress(`${target.tag} issuer discovery and JWKS readable without credentials`);
}

/** Reads an AuthenticationConfiguration file; absent → an empty configuration (created on write). */
async function readAuthenticationConfig(file: string): Promise<{ doc: AuthenticationConfiguration; json: boolean; existed: boolean }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { doc: parseAuthenticationConfiguration('', file), json: false, existed: false };
    throw new CliError(`cannot read --authentication-config ${file}: ${describeError(e)}`);
  }
  try {
    return { doc: parseAuthenticationConfiguration(text, file), json: looksLikeJson(text), existed: true };
  } catch (e) {
    throw new CliError(`--authentication-config ${file}: ${describeError(e)}`);
  }
}

/**
 * Replaces `file` at once (a temporary file in the same directory, then rename): the API server,
 * which watches it and re-reads it, never sees half a document.
 */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new CliError(`cannot write --authentication-config ${file}: ${describeError(e)}`);
  }
}

/**
 * Merges `entry` into `file`. An entry already there as it would be written leaves the file
 * untouched, unless `refreshKeys`: then the file is rewritten with a new first comment line, and
 * the source's API server, which reloads it on any change of its bytes, rebuilds its JWT
 * authenticators and fetches every issuer's keys again (it otherwise keeps a fetched key set for
 * the JWKS response's max-age, an hour for kube-apiserver, while it verifies the tokens it sees).
 */
async function mergeIntoFile(file: string, entry: JwtAuthenticator, o: { dryRun: boolean; refreshKeys: boolean }, out: Output): Promise<void> {
  const { doc, json, existed } = await readAuthenticationConfig(file);
  if (o.refreshKeys && json) {
    throw new CliError(`--refresh-keys: ${file} is JSON, which has no comments to change; restart the source's API server instead, or keep the file as YAML`);
  }
  const merged = mergeJwtAuthenticator(doc, entry);
  const replaced = (doc.jwt ?? []).some((e) => (e as { issuer?: { url?: unknown } } | null)?.issuer?.url === entry.issuer.url);
  const unchanged = existed && isDeepStrictEqual(merged, doc);
  if (unchanged && !o.refreshKeys) {
    out.progress(`the JWT authenticator for issuer ${entry.issuer.url} in ${file}: unchanged`);
    return;
  }
  const what = unchanged
    ? `rewrote ${file} (JWT authenticator for issuer ${entry.issuer.url} unchanged) so that the source's API server fetches the issuer's keys again`
    : `${replaced ? 'replaced the' : 'added a'} JWT authenticator for issuer ${entry.issuer.url} in ${file}${existed ? '' : ' (new file)'}`;
  if (o.dryRun) {
    out.progress(`would have ${what}`);
    return;
  }
  const stamp = o.refreshKeys ? `kubemcsa federate --refresh-keys ${new Date().toISOString()}: rewritten so that the API server rebuilds its JWT authenticators` : undefined;
  await writeAtomically(file, formatAuthenticationConfiguration(merged, json ? 'json' : 'yaml', stamp));
  out.progress(`${what}; the source's API server reloads it within about a minute (see docs/federation.md)`);
}

export async function runFederate(opts: FederateOptions, out: Output): Promise<void> {
  const { target, source } = await resolveClusters(opts, { dryRun: opts.dryRun });
  const targetCa = target.requireCa('the JWT authenticator (the CA serving the target issuer)');
  const sourceCa = source.requireCa('the federated source record in the target');
  const server = opts.sourceServer ?? source.loaded.server;
  const loopback = loopbackServerWarning(server, source.label);
  if (loopback) out.progress(loopback);
  const audience = opts.audience ?? defaultFederatedAudience(source.name);
  await allChecks([
    async () => {
      await checkReachable(target, out);
      await checkPermissions(target, targetPermissions(opts.allowAnonymousDiscovery), 'create and patch', out);
    },
    async () => checkReachable(source, out),
  ]);
  const discovery = await target.call('read the ServiceAccount issuer discovery document (/.well-known/openid-configuration)', () => readIssuerDiscovery(target.loaded.kc, target.label));
  let issuer: URL;
  try {
    issuer = new URL(discovery.issuer);
  } catch {
    throw new CliError(`${target.label}: its ServiceAccount issuer ${JSON.stringify(discovery.issuer)} is not a URL; a JWT authenticator needs an https issuer (kube-apiserver --service-account-issuer)`);
  }
  if (issuer.protocol !== 'https:') throw new CliError(`${target.label}: its ServiceAccount issuer ${discovery.issuer} is not https; a JWT authenticator needs an https issuer`);
  out.progress(`${target.tag} ServiceAccount issuer ${discovery.issuer}, keys at ${discovery.jwks_uri}`);
  const discoveryUrl = discoveryUrlOf(discovery.issuer, opts.discoveryUrl);
  await ensureAnonymousDiscovery(target, { discovery: discoveryUrl, jwks: discovery.jwks_uri }, targetCa, opts, out);

  const record = federatedRecordManifest({ sourceName: source.name, server, caPem: sourceCa, audience });
  if (opts.dryRun) {
    out.progress(`${target.tag} would apply ${describeRef(refOf(record))} (server ${server}, audience ${audience})`);
  } else {
    await ensureNamespace(target, namespaceManifest(INSTALL_NAMESPACE), out, Date.now() + 120_000);
    const r = await target.apply(record);
    out.progress(`${target.tag} ${describeRef(refOf(record))}: ${r.outcome}`);
  }
  const entry = jwtAuthenticatorFor({
    targetName: target.name,
    issuerUrl: discovery.issuer,
    ...(opts.discoveryUrl !== undefined ? { discoveryUrl: opts.discoveryUrl } : {}),
    caPem: targetCa,
    audience,
  });
  if (opts.authenticationConfig !== undefined) await mergeIntoFile(opts.authenticationConfig, entry, opts, out);
  out.data(opts.output === 'json' ? `${JSON.stringify(entry, null, 2)}\n` : stringify([entry], { lineWidth: 0 }));
  if (opts.dryRun) out.progress('dry run: nothing was changed');
  out.progress(
    `federated: once ${source.label}'s API server runs with this JWT authenticator (the jwt list of its --authentication-config), it maps ` +
      `pods of ${target.name} to users ${federatedPrefix(target.name)}system:serviceaccount:<namespace>:<serviceaccount> for audience ${audience}`,
  );
}

export async function runUnfederate(opts: UnfederateOptions, out: Output): Promise<void> {
  const { target, source } = await resolveClusters(opts, { dryRun: opts.dryRun });
  await checkReachable(target, out);
  await deleteIfOurs(target, { apiVersion: 'v1', kind: 'ConfigMap', namespace: INSTALL_NAMESPACE, name: federatedRecordName(source.name) }, out);
  if (opts.authenticationConfig !== undefined) {
    const file = opts.authenticationConfig;
    const { doc, json, existed } = await readAuthenticationConfig(file);
    const { doc: without, removed } = removeJwtAuthenticator(doc, { targetName: target.name });
    if (!existed || removed === 0) out.progress(`${file}: no JWT authenticator for ${target.name} (username prefix ${federatedPrefix(target.name)})`);
    else if (opts.dryRun) out.progress(`would have removed the JWT authenticator for ${target.name} from ${file}`);
    else {
      await writeAtomically(file, formatAuthenticationConfiguration(without, json ? 'json' : 'yaml'));
      out.progress(`removed the JWT authenticator for ${target.name} from ${file}; the source's API server stops accepting its tokens at its next reload`);
    }
  }
  if (opts.dryRun) out.progress('dry run: nothing was changed');
  out.progress(
    `unfederated ${source.name} from ${target.name}. Kept: the anonymous issuer discovery binding in the target, if any (other sources may use it; ` +
      'kubectl delete clusterrolebinding multicluster-service-account-anonymous-issuer-discovery). A source whose configuration still trusts ' +
      `${target.name} accepts its tokens until they expire: remove the entry there.`,
  );
}
