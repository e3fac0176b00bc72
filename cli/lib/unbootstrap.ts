// `kubemcsa unbootstrap`: removes a registration from both sides. After a pre-flight (reachable,
// allowed to delete all of it): target first (the registration and its Secret), then the source
// (the target's grants, bindings, roles, the importer ServiceAccount: deleting it revokes every
// token it minted), then
// the shared ClusterRole and, last, the namespaces once unused. With
// --wait it also waits for the source to refuse the registration's token: the API server caches
// a successful token authentication for 10 s, so deleting the ServiceAccount is not instant.
import { IMPORT_LABEL } from '../../src/constants.js';
import { anchorsOfRoles, GRANT_RBAC_KINDS, grantObjectsSelector, isGrantObject, TOKEN_MINTER_CLUSTER_ROLE } from '../../src/bootstrap/grant.js';
import { importerBindingName } from '../../src/bootstrap/names.js';
import type { UnbootstrapOptions } from '../../src/bootstrap/options.js';
import { unbootstrapPermissions } from '../../src/bootstrap/permissions.js';
import { describeRef, sameRef, unbootstrapPlan, type BindingInfo, type ObjectRef } from '../../src/bootstrap/plan.js';
import { credentialFromSecretData, importNameOfSecret } from '../../src/secret.js';
import { importLabelValue } from '../../src/naming.js';
import { WithMeta, type ClusterClient } from './cluster.js';
import type { Output } from './output.js';
import { allChecks, checkPermissions, checkReachable, deleteClusterRoleIfUnused, deleteIfOurs, deleteNamespaceIfUnused, ourBindings, pollUntil, resolveClusters } from './shared.js';

const RBAC = 'rbac.authorization.k8s.io/v1';

/** The token in the registration's Secret in the target, if the Secret is ours and holds one. */
async function registrationToken(target: ClusterClient, ref: ObjectRef, sourceName: string): Promise<string | undefined> {
  const secret = await target.readSecret(ref);
  if (!secret || importNameOfSecret(secret.metadata) !== sourceName) return undefined;
  return credentialFromSecretData(secret.data)?.token;
}

/** Every grant object made for the target, in deletion order: anchor Secrets first (they stop the minted tokens), then bindings, then roles. */
async function grantObjectsOf(source: ClusterClient, targetSelector: string): Promise<ObjectRef[]> {
  const labelSelector = grantObjectsSelector(targetSelector);
  const lists = await Promise.all(
    GRANT_RBAC_KINDS.map(async ({ apiVersion, kind }) =>
      (await source.list(apiVersion, kind, { labelSelector })).map(({ meta }) => ({
        apiVersion,
        kind,
        name: meta.metadata.name,
        ...(meta.metadata.namespace ? { namespace: meta.metadata.namespace } : {}),
      })),
    ),
  );
  const rbac = lists.flat();
  return [...anchorsOfRoles(rbac), ...rbac];
}

/** Polls until `source` answers the registration's token with 401 (none to check: says so). */
async function waitTokenRefused(source: ClusterClient, token: string | undefined, deadline: number, waited: string, out: Output): Promise<void> {
  if (token === undefined) {
    out.progress(`${source.tag} registration token: none found in the target, nothing to check`);
    return;
  }
  await pollUntil(async () => ((await source.acceptsToken(token)) ? undefined : true), deadline, () => `${source.label} still accepts the registration's token after ${waited}`);
  out.progress(`${source.tag} registration token: refused (HTTP 401)`);
}

export async function runUnbootstrap(opts: UnbootstrapOptions, out: Output): Promise<void> {
  // A dry run goes through every step below against clients that send no deletion (cluster.ts).
  const { target, source } = await resolveClusters(opts, { dryRun: opts.dryRun });
  const plan = unbootstrapPlan({ targetName: target.name, sourceName: source.name });
  const bindingName = importerBindingName(target.name);
  // Pre-flight: reachable, and allowed to delete everything below, before anything is deleted.
  let bindings: BindingInfo[] = [];
  let grantObjects: ObjectRef[] = [];
  await allChecks([
    async () => {
      await checkReachable(target, out);
      await checkPermissions(target, unbootstrapPermissions(plan, []).target, 'read and delete', out);
    },
    async () => {
      await checkReachable(source, out);
      bindings = (await ourBindings(source, plan.sourceSelector)).filter((b) => b.name === bindingName);
      grantObjects = await grantObjectsOf(source, plan.sourceSelector);
      await checkPermissions(source, unbootstrapPermissions(plan, bindings, grantObjects).source, 'read and delete', out);
    },
  ]);
  const [registration, secret] = plan.target;

  // Read before the registration goes: garbage collection deletes its Secret right after.
  const token = opts.wait ? await registrationToken(target, secret!, source.name) : undefined;
  if (await target.servesImports()) await deleteIfOurs(target, registration!, out);
  else out.progress(`${target.tag} ServiceAccountImport API not served: no registration to delete`);
  await deleteIfOurs(target, secret!, out, (labels) => labels?.[IMPORT_LABEL] === importLabelValue(source.name));

  // The target's grants first: deleting their anchors stops every token minted under them.
  for (const ref of grantObjects) {
    if (ref.kind === 'Secret') await deleteIfOurs(source, ref, out, isGrantObject);
    else out.progress(`${source.tag} ${describeRef(ref)}: ${await source.delete(ref)} (grant)`);
  }
  await deleteClusterRoleIfUnused(source, { apiVersion: RBAC, kind: 'ClusterRole', name: TOKEN_MINTER_CLUSTER_ROLE }, out);

  const done: ObjectRef[] = [];
  for (const b of bindings) {
    const ref = { apiVersion: RBAC, kind: b.kind, name: b.name, ...(b.namespace ? { namespace: b.namespace } : {}) };
    out.progress(`${source.tag} ${describeRef(ref)}: ${await source.delete(ref)}`);
    done.push(ref);
  }
  for (const ref of plan.source) if (!done.some((d) => sameRef(d, ref))) await deleteIfOurs(source, ref, out);
  // The importers' admission policy goes with the last importer (the shared ClusterRole).
  if (await deleteClusterRoleIfUnused(source, plan.clusterRole, out)) for (const ref of plan.admissionPolicy) await deleteIfOurs(source, ref, out);
  // The namespaces last: they go only if emptied, and a failure here leaves just them behind.
  const targetNsDeleted = await deleteNamespaceIfUnused(target, plan.namespace, out);
  const sourceNsDeleted = await deleteNamespaceIfUnused(source, plan.namespace, out);

  if (opts.wait) {
    const deadline = Date.now() + opts.timeoutMs;
    const waited = `${Math.round(opts.timeoutMs / 1000)} s`;
    const waitGone = async (c: ClusterClient, ref: ObjectRef) => {
      await c.waitFor(ref, WithMeta, (o) => o === undefined, Math.max(1, deadline - Date.now()), () => `${describeRef(ref)} in ${c.label} still exists after ${waited}`);
      out.progress(`${c.tag} ${describeRef(ref)}: gone`);
    };
    await waitGone(source, plan.source[plan.source.length - 1]!);
    await waitTokenRefused(source, token, deadline, waited, out);
    const namespace: ObjectRef = { apiVersion: 'v1', kind: 'Namespace', name: plan.namespace };
    if (targetNsDeleted) await waitGone(target, namespace);
    if (sourceNsDeleted) await waitGone(source, namespace);
  }
  if (opts.dryRun) out.progress('dry run: nothing was changed');
  else out.progress(`unbootstrapped: ${target.label} no longer imports from ${source.label}`);
}
