// `kubemcsa grant` and `kubemcsa revoke`, in the source cluster only. Grant: pre-flight, then the
// grant's objects (server-side apply, anchor first) and, last, its record on the importer
// ServiceAccount (a merge patch of one annotation). Revoke: the record first, then the anchor
// Secret (every token minted under the grant stops authenticating), the binding and the role.
import { describeGrant, grantAnnotationValue } from '../../src/consent/grants.js';
import { CliError } from '../../src/bootstrap/errors.js';
import {
  clusterWideWarning,
  describeGrantPlan,
  describeRevokePlan,
  grantPermissions,
  grantPlan,
  isGrantObject,
  revokePermissions,
  type GrantPlan,
} from '../../src/bootstrap/grant.js';
import { validateClusterName } from '../../src/bootstrap/names.js';
import type { GrantOptions } from '../../src/bootstrap/options.js';
import { describeRef, refOf } from '../../src/bootstrap/plan.js';
import { ClusterClient } from './cluster.js';
import { loadCluster } from './kubeconfig.js';
import type { Output } from './output.js';
import { allChecks, checkPermissions, checkReachable, deleteClusterRoleIfUnused, deleteIfOurs } from './shared.js';
import { federatedGrantBinding, federatedRoleRef, federatedSubject, isFederatedGrantObject } from '../../src/federation/grant.js';
import type { Grant } from '../../src/consent/grants.js';

/** What a federated grant binds, for messages: `User mcsa:t:system:serviceaccount:ns:sa` (or the namespace's Group). */
function describeFederated(targetName: string, g: Grant): string {
  const s = federatedSubject(targetName, g);
  return `${s.kind} ${s.name}`;
}

/** `grant --federated`: one RoleBinding in the source, to the identity the source maps from the target's pods. */
async function runFederatedGrant(opts: GrantOptions, role: string, out: Output): Promise<void> {
  const { source, targetName } = await resolve(opts);
  const binding = federatedGrantBinding(targetName, opts.grant, role);
  await checkReachable(source, out);
  await allChecks([
    () => mustExist(source, { apiVersion: 'v1', kind: 'Namespace', name: opts.grant.namespace }, ''),
    () => mustExist(source, federatedRoleRef(role), ''),
    () => checkPermissions(source, ['create', 'patch'].map((verb) => ({ verb, group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespace: opts.grant.namespace })), 'create and patch', out),
  ]);
  const what = `ClusterRole ${role} in namespace ${opts.grant.namespace} of ${source.label} to ${describeFederated(targetName, opts.grant)}`;
  if (opts.dryRun) {
    out.data(`would apply ${describeRef(refOf(binding))}: ${what}\n`);
    out.progress('dry run: nothing was changed');
    return;
  }
  const r = await source.apply(binding);
  out.progress(`${source.tag} ${describeRef(refOf(binding))}: ${r.outcome}`);
  out.progress(`granted (federated): ${what}; it takes effect once the source trusts ${targetName} (kubemcsa federate)`);
}

async function runFederatedRevoke(opts: GrantOptions, role: string, out: Output): Promise<void> {
  const { source, targetName } = await resolve(opts);
  const ref = refOf(federatedGrantBinding(targetName, opts.grant, role));
  await checkReachable(source, out);
  await checkPermissions(source, [{ verb: 'delete', group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespace: opts.grant.namespace }], 'delete', out);
  if (opts.dryRun) {
    out.data(`would delete ${describeRef(ref)} (if kubemcsa created it)\n`);
    out.progress('dry run: nothing was changed');
    return;
  }
  await deleteIfOurs(source, ref, out, isFederatedGrantObject);
  out.progress(`revoked (federated): ClusterRole ${role} in namespace ${opts.grant.namespace} from ${describeFederated(targetName, opts.grant)}; its calls are refused (403) at once`);
}

/** The source client and the target's name (from --target-name or the target context's cluster; the target is never called). */
async function resolve(opts: GrantOptions): Promise<{ source: ClusterClient; targetName: string }> {
  const s = await loadCluster(opts.source, '--source-');
  const source = new ClusterClient('source', s.clusterName, s);
  if (opts.target.name !== undefined) return { source, targetName: opts.target.name };
  const t = await loadCluster(opts.target, '--target-');
  return { source, targetName: validateClusterName(t.clusterName, 'target', { context: t.contextName }) };
}

async function mustExist(source: ClusterClient, ref: { apiVersion: string; kind: string; name: string; namespace?: string }, hint: string): Promise<void> {
  if ((await source.readMeta(ref)) === undefined) throw new CliError(`${describeRef(ref)} does not exist in ${source.label}${hint}`);
}

async function grantPreflight(source: ClusterClient, plan: GrantPlan, out: Output): Promise<void> {
  await checkReachable(source, out);
  const importer = plan.record.importer;
  const g = plan.grant;
  await allChecks([
    () => mustExist(source, importer, `: cluster ${plan.targetName} is not registered with this source; run kubemcsa bootstrap first`),
    async () => (plan.scope === 'cluster' ? undefined : mustExist(source, { apiVersion: 'v1', kind: 'Namespace', name: g.namespace }, '')),
    async () => (plan.scope === 'serviceaccount' ? mustExist(source, { apiVersion: 'v1', kind: 'ServiceAccount', name: g.serviceAccount, namespace: g.namespace }, '') : undefined),
    () => checkPermissions(source, grantPermissions(plan), 'create and patch', out),
  ]);
  out.progress(`${source.tag} pre-flight: importer ${describeRef(importer)} and what is granted exist`);
}

export async function runGrant(opts: GrantOptions, out: Output): Promise<void> {
  if (opts.federated) return runFederatedGrant(opts, opts.federated.role, out);
  const { source, targetName } = await resolve(opts);
  const plan = grantPlan(targetName, opts.grant);
  if (plan.scope === 'cluster') out.progress(clusterWideWarning(targetName, source.name));
  await grantPreflight(source, plan, out);
  if (opts.dryRun) {
    out.data(describeGrantPlan(plan, source.name).join('\n') + '\n');
    out.progress('dry run: nothing was changed');
    return;
  }
  let anchorUid: string | undefined;
  for (const m of plan.objects) {
    const r = await source.apply(m);
    out.progress(`${source.tag} ${describeRef(refOf(m))}: ${r.outcome}`);
    if (m.kind === 'Secret') anchorUid = r.meta.metadata.uid;
  }
  // The record last: the controller mints under the grant only once every object above exists.
  // It names the anchor's UID: tokens are bound to that very object, and a grant given again
  // after a revoke (a new anchor) is a new grant to the controller.
  const { importer, key } = plan.record;
  const value = grantAnnotationValue({ ...plan.grant, ...(anchorUid ? { anchorUid } : {}) });
  const before = await source.readMeta(importer);
  let outcome: string;
  if (before?.metadata.annotations?.[key] === value) outcome = 'unchanged';
  else {
    const patched = await source.patchAnnotations(importer, { [key]: value });
    if (patched === undefined) throw new CliError(`${describeRef(importer)} disappeared from ${source.label} while granting; run kubemcsa bootstrap, then grant again`);
    outcome = 'recorded';
  }
  out.progress(`${source.tag} ${describeRef(importer)} annotation ${key}=${value}: ${outcome}`);
  out.progress(`granted: ${describeGrant(plan.grant)} of ${source.label} to cluster ${targetName}`);
}

export async function runRevoke(opts: GrantOptions, out: Output): Promise<void> {
  if (opts.federated) return runFederatedRevoke(opts, opts.federated.role, out);
  const { source, targetName } = await resolve(opts);
  const plan = grantPlan(targetName, opts.grant);
  await checkReachable(source, out);
  await checkPermissions(source, revokePermissions(plan), 'read and delete', out);
  if (opts.dryRun) {
    out.data(describeRevokePlan(plan, source.name).join('\n') + '\n');
    out.progress('dry run: nothing was changed');
    return;
  }
  // The record first: the controller stops minting under the grant before its objects go.
  const { importer, key } = plan.record;
  const before = await source.readMeta(importer);
  let outcome = 'absent';
  if (before?.metadata.annotations?.[key] !== undefined) outcome = (await source.patchAnnotations(importer, { [key]: null })) === undefined ? 'absent' : 'removed';
  out.progress(`${source.tag} ${describeRef(importer)} annotation ${key}: ${outcome}`);
  for (const ref of plan.removals) await deleteIfOurs(source, ref, out, isGrantObject);
  if (plan.sharedClusterRole) await deleteClusterRoleIfUnused(source, plan.sharedClusterRole, out);
  out.progress(`revoked: ${describeGrant(plan.grant)} of ${source.label} from cluster ${targetName}`);
}
