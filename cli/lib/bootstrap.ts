// `kubemcsa bootstrap`: pre-flight, then the source objects, then the registration in the target
// with a freshly minted token. Decisions come from src/bootstrap (plan, mint decision); this file
// only sequences the API calls and reports one progress line per step.
import { loopbackServerWarning } from '../../src/bootstrap/server-url.js';
import * as t from 'io-ts';
import { decodeOrThrow } from '../../src/api/decode.js';
import { ImportStatus, isTokenImport, ObjectMeta, readyCondition, ServiceAccountImport, type TokenImport } from '../../src/api/import.js';
import { CliError } from '../../src/bootstrap/errors.js';
import { mintDecision, readyAndCurrent, type ExistingSecret } from '../../src/bootstrap/mint.js';
import { readTokenClaims } from '../../src/jwt.js';
import type { BootstrapOptions } from '../../src/bootstrap/options.js';
import { sourcePermissions, targetPermissions } from '../../src/bootstrap/permissions.js';
import { appliedObjects, bootstrapPlan, describePlan, describeRef, refOf, staleBindings, type BootstrapPlan, type Manifest } from '../../src/bootstrap/plan.js';
import { stringify } from 'yaml';
import { localTokenTimes } from '../../src/controller/decide.js';
import { buildImportSecret, mintFingerprint } from '../../src/secret.js';
import type { ClusterClient } from './cluster.js';
import type { Output } from './output.js';
import { allChecks, checkPermissions, checkReachable, ensureNamespace, resolveClusters } from './shared.js';

const RBAC = 'rbac.authorization.k8s.io/v1';

async function preflight(target: ClusterClient, source: ClusterClient, plan: BootstrapPlan, out: Output): Promise<void> {
  await allChecks([
    async () => {
      await checkReachable(target, out);
      if (!(await target.servesImports())) {
        throw new CliError(
          `${target.label} does not serve the ServiceAccountImport API (CRD serviceaccountimports.multicluster.admiralty.io); ` +
            `install it first: kubectl apply -f manifests/crd/serviceaccountimports.yaml`,
        );
      }
      out.progress(`${target.tag} pre-flight: ServiceAccountImport CRD served`);
      await checkPermissions(target, targetPermissions(plan), 'create and patch', out);
    },
    async () => {
      await checkReachable(source, out);
      await checkPermissions(source, sourcePermissions(plan), 'create and patch', out);
      for (const ns of plan.input.sourceNamespaces ?? []) {
        if ((await source.readMeta({ apiVersion: 'v1', kind: 'Namespace', name: ns })) === undefined) {
          throw new CliError(`namespace ${ns} given with --source-namespaces does not exist in ${source.label}`);
        }
      }
    },
  ]);
}

/** Source: namespace, ClusterRole, importer ServiceAccount, bindings; prunes stale bindings. Returns the importer's uid. */
async function applySource(source: ClusterClient, plan: BootstrapPlan, out: Output, deadline: number): Promise<string> {
  await ensureNamespace(source, plan.sourceNamespace, out, deadline);
  let importerUid: string | undefined;
  for (const m of plan.source) {
    const r = await source.apply(m);
    out.progress(`${source.tag} ${describeRef(refOf(m))}: ${r.outcome}`);
    if (m.kind === 'ServiceAccount') importerUid = r.meta.metadata.uid;
  }
  const found = (
    await Promise.all(
      ['ClusterRoleBinding', 'RoleBinding'].map(async (kind) =>
        (await source.list(RBAC, kind, { labelSelector: plan.pruneSelector })).map(({ meta }) => ({
          apiVersion: RBAC,
          kind,
          name: meta.metadata.name,
          ...(meta.metadata.namespace ? { namespace: meta.metadata.namespace } : {}),
        })),
      ),
    )
  ).flat();
  for (const stale of staleBindings(plan, found)) {
    out.progress(`${source.tag} ${describeRef(stale)}: ${await source.delete(stale)} (no longer wanted)`);
  }
  if (importerUid === undefined) throw new CliError(`ServiceAccount ${plan.importer.namespace}/${plan.importer.name} in ${source.label} has no uid`);
  return importerUid;
}

/** Target: namespace and the registration import. Returns the import as the server stored it. */
async function applyRegistration(target: ClusterClient, plan: BootstrapPlan, out: Output, deadline: number): Promise<TokenImport> {
  await ensureNamespace(target, plan.targetNamespace, out, deadline);
  const r = await target.apply(plan.registration);
  out.progress(`${target.tag} ${describeRef(refOf(plan.registration))}: ${r.outcome}`);
  const sai = decodeOrThrow(ServiceAccountImport, r.object, `${describeRef(refOf(plan.registration))} in ${target.label}`);
  if (!isTokenImport(sai)) throw new CliError(`${describeRef(refOf(plan.registration))} in ${target.label} is a federated import (spec.mode Federated), not a registration`);
  return sai;
}

async function ensureSecret(
  target: ClusterClient,
  source: ClusterClient,
  plan: BootstrapPlan,
  registration: TokenImport,
  importerUid: string,
  server: string,
  caPem: string,
  out: Output,
): Promise<Date | undefined> {
  const ref = { apiVersion: 'v1', kind: 'Secret', ...plan.secret };
  const existing = await target.readSecret(ref);
  const view: ExistingSecret | undefined = existing && {
    ...(existing.metadata.annotations ? { annotations: existing.metadata.annotations } : {}),
    dataKeys: Object.keys(existing.data ?? {}),
    ownerUids: (existing.metadata.ownerReferences ?? []).map((o) => o.uid),
  };
  const importUid = registration.metadata.uid;
  if (importUid === undefined) throw new CliError(`${describeRef(refOf(plan.registration))} in ${target.label} has no uid`);
  const fingerprint = mintFingerprint({ spec: registration.spec, server, caPem });
  const decision = mintDecision(view, { key: `${plan.secret.namespace}/${registration.metadata.name}`, fingerprint, importUid, remoteUid: importerUid }, new Date());
  if (!decision.mint) {
    out.progress(`${target.tag} ${describeRef(ref)}: unchanged (token still valid)`);
    return undefined;
  }
  const requested = registration.spec.expirationSeconds ?? plan.expirationSeconds;
  const minted = await source.mintToken(plan.importer.namespace, plan.importer.name, requested, registration.spec.audiences ?? []);
  // As the controller records them: local receive time plus the lifetime the source granted.
  const times = localTokenTimes(new Date(), readTokenClaims(minted.token).issuedAt, minted.expiration, requested);
  out.progress(`${source.tag} token minted for ServiceAccount ${plan.importer.namespace}/${plan.importer.name} (${decision.reason}), expires ${times.expiration.toISOString()}`);
  const secret = buildImportSecret({
    importName: registration.metadata.name,
    importNamespace: plan.secret.namespace,
    importUid,
    credential: { server, caPem, token: minted.token, namespace: plan.importer.namespace },
    issued: times.issued,
    expiration: times.expiration,
    remoteUid: importerUid,
    fingerprint,
  });
  const r = await target.apply({ ...secret, apiVersion: 'v1', kind: 'Secret', metadata: { ...secret.metadata, name: plan.secret.name, namespace: plan.secret.namespace } });
  out.progress(`${target.tag} ${describeRef(ref)}: ${r.outcome}`);
  return times.expiration;
}

const ImportWithStatus = t.type({ metadata: ObjectMeta, status: t.union([ImportStatus, t.undefined]) });

async function waitReady(target: ClusterClient, plan: BootstrapPlan, out: Output, timeoutMs: number, mintedExpiration: Date | undefined): Promise<void> {
  const ref = refOf(plan.registration);
  out.progress(`${target.tag} waiting up to ${Math.round(timeoutMs / 1000)} s for ${describeRef(ref)} to be Ready`);
  const ready = (sai: t.TypeOf<typeof ImportWithStatus>) => readyAndCurrent({ metadata: sai.metadata, ...(sai.status ? { status: sai.status } : {}) }, mintedExpiration);
  const last = await target.waitFor(ref, ImportWithStatus, (sai) => sai === undefined || ready(sai), timeoutMs, (sai) => {
    const c = sai?.status ? readyCondition({ status: sai.status }) : undefined;
    const state = c ? `Ready=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}` : 'no Ready condition yet (is the controller running in the target?)';
    return `${describeRef(ref)} in ${target.label} is not Ready after ${Math.round(timeoutMs / 1000)} s: ${state}`;
  });
  if (last === undefined) throw new CliError(`${describeRef(ref)} disappeared from ${target.label} while waiting for it to be Ready`);
  out.progress(`${target.tag} ${describeRef(ref)}: Ready`);
}

/**
 * The objects bootstrap would apply now, for GitOps: a YAML stream (one commented section per
 * cluster) or one JSON document. A namespace that exists is left out, as bootstrap leaves it
 * alone (it may belong to an installation: applying kubemcsa's labels to it would make
 * unbootstrap treat it as its own).
 */
async function formatApplied(plan: BootstrapPlan, source: ClusterClient, target: ClusterClient, format: 'yaml' | 'json'): Promise<string> {
  const objects = appliedObjects(plan);
  const notPrinted: { cluster: string; object: string; why: string }[] = [];
  const keep = async (c: ClusterClient, list: Manifest[]) => {
    const kept: Manifest[] = [];
    for (const m of list) {
      if (m.kind === 'Namespace' && (await c.readMeta(refOf(m))) !== undefined) {
        notPrinted.push({ cluster: c.name, object: describeRef(refOf(m)), why: 'it exists, and bootstrap never modifies an existing namespace' });
      } else kept.push(m);
    }
    return kept;
  };
  const sourceObjects = await keep(source, objects.source);
  const targetObjects = await keep(target, objects.target);
  notPrinted.push({
    cluster: target.name,
    object: `Secret ${plan.secret.namespace}/${plan.secret.name}`,
    why: `it holds a token minted from the source for ServiceAccount ${plan.importer.namespace}/${plan.importer.name} when bootstrap runs; run kubemcsa bootstrap (idempotent: it applies these same objects, then mints it)`,
  });
  if (format === 'json') {
    return JSON.stringify({ source: { cluster: source.name, objects: sourceObjects }, target: { cluster: target.name, objects: targetObjects }, notPrinted }, null, 2) + '\n';
  }
  const section = (c: ClusterClient, list: Manifest[]) =>
    [`# ${c.role} cluster ${c.name} (context ${c.loaded.contextName}): apply these to the ${c.role}`, ...list.map((m) => `---\n${stringify(m)}`)].join('\n');
  return [
    `# kubemcsa bootstrap: the objects it applies (server-side apply, field manager kubemcsa), by cluster.`,
    section(source, sourceObjects),
    section(target, targetObjects),
    ...notPrinted.map((n) => `# Not printed: ${n.object} in the ${n.cluster === target.name ? 'target' : 'source'}: ${n.why}.`),
    '',
  ].join('\n');
}

export async function runBootstrap(opts: BootstrapOptions, out: Output): Promise<void> {
  const { target, source } = await resolveClusters(opts);
  const caPem = source.requireCa("the registration in the target");
  const server = opts.sourceServer ?? source.loaded.server;
  const loopback = loopbackServerWarning(server, source.label);
  if (loopback) out.progress(loopback);
  const plan = bootstrapPlan({
    targetName: target.name,
    sourceName: source.name,
    ...(opts.sourceNamespaces ? { sourceNamespaces: opts.sourceNamespaces } : {}),
    registrationSeconds: opts.registrationSeconds,
  });
  await preflight(target, source, plan, out);
  if (opts.dryRun) {
    out.data(opts.output ? await formatApplied(plan, source, target, opts.output) : describePlan(plan, source.name, target.name).join('\n') + '\n');
    out.progress('dry run: nothing was changed');
    return;
  }
  const deadline = Date.now() + opts.timeoutMs;
  const importerUid = await applySource(source, plan, out, deadline);
  const registration = await applyRegistration(target, plan, out, deadline);
  const minted = await ensureSecret(target, source, plan, registration, importerUid, server, caPem, out);
  if (opts.wait) await waitReady(target, plan, out, opts.timeoutMs, minted);
  out.progress(`bootstrapped: ${source.label} is registered in ${target.label} (clusterName: ${source.name}); no ServiceAccount of it is importable yet`);
  out.progress(
    `next: grant each ServiceAccount the target may use, in the source: kubemcsa grant SERVICEACCOUNT -n NAMESPACE --target-name ${target.name} --source-context ${source.loaded.contextName}`,
  );
}
