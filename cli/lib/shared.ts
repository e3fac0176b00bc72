// Steps shared by bootstrap and unbootstrap: resolving the two clusters, pre-flight reachability,
// the install namespace (ensure / delete when nothing else is left in it), waiting with deadlines.
import { setTimeout as sleep } from 'node:timers/promises';
import * as t from 'io-ts';
import { decodeOrThrow } from '../../src/api/decode.js';
import { CliError } from '../../src/bootstrap/errors.js';
import { isManaged, managedSelector, validateClusterName } from '../../src/bootstrap/names.js';
import type { NamedClusterSelector } from '../../src/bootstrap/options.js';
import { describePermission, type Permission } from '../../src/bootstrap/permissions.js';
import { clusterRoleStillUsed, describeRef, namespaceBlockers, refOf, type BindingInfo, type Manifest, type NamespaceItem, type ObjectRef } from '../../src/bootstrap/plan.js';
import { API_GROUP_VERSION, IMPORT_KIND } from '../../src/constants.js';
import { ClusterClient, WithMeta } from './cluster.js';
import { loadCluster } from './kubeconfig.js';
import type { Output } from './output.js';

const POLL_MS = 500;

const RBAC = 'rbac.authorization.k8s.io/v1';
const RoleRef = t.type({ roleRef: t.type({ kind: t.string, name: t.string }) });

interface ResolvedClusters {
  target: ClusterClient;
  source: ClusterClient;
}

/** Loads both kubeconfigs (separate KubeConfig instances) and settles both cluster names. */
export async function resolveClusters(opts: { target: NamedClusterSelector; source: NamedClusterSelector }, clientOpts: { dryRun?: boolean } = {}): Promise<ResolvedClusters> {
  const t = await loadCluster(opts.target, '--target-');
  const s = await loadCluster(opts.source, '--source-');
  const targetName = opts.target.name ?? validateClusterName(t.clusterName, 'target', { context: t.contextName });
  const sourceName = opts.source.name ?? validateClusterName(s.clusterName, 'source', { context: s.contextName });
  return { target: new ClusterClient('target', targetName, t, clientOpts), source: new ClusterClient('source', sourceName, s, clientOpts) };
}

/**
 * Runs checks for both clusters at once and reports the first failure in a stable order (so the
 * same bad input always gives the same message).
 */
export async function allChecks(checks: Array<() => Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(checks.map((c) => c()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Fails naming the first few of `needed` that the kubeconfig's identity may not do in `c`. */
export async function checkPermissions(c: ClusterClient, needed: Permission[], what: string, out: Output): Promise<void> {
  const missing = await c.missingPermissions(needed);
  if (missing.length > 0) {
    const shown = missing.slice(0, 4).map(describePermission).join(', ');
    throw new CliError(`the kubeconfig's identity may not ${shown}${missing.length > 4 ? ` (and ${missing.length - 4} more)` : ''} in ${c.label}`);
  }
  out.progress(`${c.tag} pre-flight: allowed to ${what} every object of the plan`);
}

export async function checkReachable(c: ClusterClient, out: Output): Promise<void> {
  const version = await c.version();
  out.progress(`${c.tag} pre-flight: ${c.loaded.server} reachable (Kubernetes ${version})`);
}

function isTerminating(meta: { metadata: { deletionTimestamp?: unknown } }): boolean {
  return meta.metadata.deletionTimestamp !== undefined && meta.metadata.deletionTimestamp !== null;
}

/**
 * Creates the install namespace when it is absent; leaves an existing one as it is (it may belong
 * to an installation). A namespace still being deleted (e.g. right after unbootstrap) is waited
 * for, then created again.
 */
export async function ensureNamespace(c: ClusterClient, m: Manifest, out: Output, deadline: number): Promise<void> {
  const ref = refOf(m);
  let announced = false;
  for (;;) {
    const ns = await c.readMeta(ref);
    if (ns === undefined) {
      const r = await c.apply(m);
      out.progress(`${c.tag} ${describeRef(ref)}: ${r.outcome}`);
      return;
    }
    if (!isTerminating(ns)) {
      out.progress(`${c.tag} ${describeRef(ref)}: exists`);
      return;
    }
    if (Date.now() > deadline) throw new CliError(`${describeRef(ref)} in ${c.label} is still being deleted; retry when it is gone`);
    if (!announced) out.progress(`${c.tag} ${describeRef(ref)}: being deleted, waiting for it to go`);
    announced = true;
    await c.waitFor(ref, WithMeta, (o) => o === undefined, Math.max(1, deadline - Date.now()), () => `${describeRef(ref)} in ${c.label} is still being deleted; retry when it is gone`);
  }
}

const NAMESPACE_CONTENTS: Array<[apiVersion: string, kind: string]> = [
  ['v1', 'ServiceAccount'],
  ['v1', 'Secret'],
  ['v1', 'ConfigMap'],
  ['v1', 'Pod'],
  ['v1', 'Service'],
  ['rbac.authorization.k8s.io/v1', 'Role'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['apps/v1', 'Deployment'],
  ['coordination.k8s.io/v1', 'Lease'],
];

async function namespaceContents(c: ClusterClient, namespace: string): Promise<NamespaceItem[]> {
  const kinds = [...NAMESPACE_CONTENTS];
  if (await c.servesImports()) kinds.push([API_GROUP_VERSION, IMPORT_KIND]);
  const lists = await Promise.all(
    kinds.map(async ([apiVersion, kind]) => {
      try {
        const items = await c.list(apiVersion, kind, { namespace });
        return items.filter((i) => !isTerminating(i.meta)).map((i) => ({ kind, name: i.meta.metadata.name }));
      } catch {
        // Cannot tell what is there: keep the namespace.
        return [{ kind, name: '(could not list)' }];
      }
    }),
  );
  return lists.flat();
}

/** Deletes the install namespace if kubemcsa created it and nothing but built-ins is left in it. */
export async function deleteNamespaceIfUnused(c: ClusterClient, name: string, out: Output): Promise<boolean> {
  const ref = { apiVersion: 'v1', kind: 'Namespace', name };
  const ns = await c.readMeta(ref);
  if (ns === undefined || isTerminating(ns)) {
    out.progress(`${c.tag} ${describeRef(ref)}: ${ns === undefined ? 'absent' : 'being deleted'}`);
    return ns !== undefined;
  }
  if (!isManaged(ns.metadata.labels)) {
    out.progress(`${c.tag} ${describeRef(ref)}: kept (not created by kubemcsa)`);
    return false;
  }
  const blockers = namespaceBlockers(await namespaceContents(c, name));
  if (blockers.length > 0) {
    const shown = blockers.slice(0, 3).map((b) => `${b.kind} ${b.name}`).join(', ');
    out.progress(`${c.tag} ${describeRef(ref)}: kept (still holds ${shown}${blockers.length > 3 ? `, and ${blockers.length - 3} more` : ''})`);
    return false;
  }
  out.progress(`${c.tag} ${describeRef(ref)}: ${await c.delete(ref)}`);
  return true;
}

/** Deletes `ref` if it exists and kubemcsa created it (or `owned` says it is ours). */
export async function deleteIfOurs(c: ClusterClient, ref: ObjectRef, out: Output, owned: (labels: Record<string, string> | undefined) => boolean = isManaged): Promise<void> {
  const meta = await c.readMeta(ref);
  if (meta === undefined) {
    out.progress(`${c.tag} ${describeRef(ref)}: absent`);
    return;
  }
  if (!owned(meta.metadata.labels)) {
    out.progress(`${c.tag} ${describeRef(ref)}: kept (not created by kubemcsa)`);
    return;
  }
  out.progress(`${c.tag} ${describeRef(ref)}: ${await c.delete(ref)}`);
}

export async function ourBindings(c: ClusterClient, labelSelector: string): Promise<Array<BindingInfo & { terminating: boolean }>> {
  const lists = await Promise.all(
    ['ClusterRoleBinding', 'RoleBinding'].map(async (kind) =>
      (await c.list(RBAC, kind, { labelSelector })).map(({ raw, meta }) => ({
        kind,
        name: meta.metadata.name,
        ...(meta.metadata.namespace ? { namespace: meta.metadata.namespace } : {}),
        roleRef: decodeOrThrow(RoleRef, raw, `${kind} ${meta.metadata.name} in ${c.label}`).roleRef,
        terminating: meta.metadata.deletionTimestamp !== undefined && meta.metadata.deletionTimestamp !== null,
      })),
    ),
  );
  return lists.flat();
}

/** Deletes the shared ClusterRole `ref` (if kubemcsa created it) once no binding of kubemcsa refers to it. */
/** Deletes a shared ClusterRole of ours once no binding of ours refers to it; true when it is gone. */
export async function deleteClusterRoleIfUnused(c: ClusterClient, ref: ObjectRef, out: Output): Promise<boolean> {
  const remaining = (await ourBindings(c, managedSelector)).filter((b) => !b.terminating);
  const users = clusterRoleStillUsed(remaining, ref.name);
  if (users.length === 0) {
    await deleteIfOurs(c, ref, out);
    return true;
  }
  out.progress(`${c.tag} ${describeRef(ref)}: kept (still bound for ${users.length} other binding(s))`);
  return false;
}

/**
 * Polls `check` until it returns a value, or fails with `onTimeout()` once `deadline` passes.
 * Only for what no watch can tell (whether a source still authenticates a token); object
 * conditions are waited for on a watch (`ClusterClient.waitFor`).
 */
export async function pollUntil<T>(check: () => Promise<T | undefined>, deadline: number, onTimeout: () => Promise<string> | string): Promise<T> {
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new CliError(await onTimeout());
    await sleep(POLL_MS);
  }
}
