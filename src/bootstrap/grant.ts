// The grant plan: which objects `kubemcsa grant` applies in the source cluster for one grant to a
// target, in which order, and what `kubemcsa revoke` removes. Pure: cli/lib/grant.ts performs it.
// The model (names, record, anchor) is src/consent/grants.ts; this file only lays it out.
import { INSTALL_NAMESPACE } from '../constants.js';
import {
  ALL,
  anchorFor,
  describeGrant,
  GRANT_LABEL,
  grantAnnotationKey,
  grantAnnotationValue,
  grantLabelValue,
  grantObjectName,
  grantScope,
  NEVER_IMPORTABLE_NAMESPACES,
  type Grant,
  type GrantScope,
} from '../consent/grants.js';
import { UsageError } from './errors.js';
import { isManaged, sharedLabels, sourceLabels } from './names.js';
import type { Permission } from './permissions.js';
import { describeRef, refOf, UNBOUND_TOKENS, type Manifest, type ObjectRef } from './plan.js';

/** The ClusterRole of every cluster-wide grant in a source (create serviceaccounts/token), shared by their bindings. */
export const TOKEN_MINTER_CLUSTER_ROLE = 'multicluster-service-account-token-minter';

const RBAC = 'rbac.authorization.k8s.io/v1';
const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** The record of a grant: one annotation on the importer ServiceAccount, written with a JSON merge patch. */
interface GrantRecord {
  importer: ObjectRef;
  key: string;
  value: string;
}

export interface GrantPlan {
  targetName: string;
  grant: Grant;
  scope: GrantScope;
  /** Applied in this order with server-side apply, before the record. */
  objects: Manifest[];
  /** Written last: once it is there the controller may mint under the grant. */
  record: GrantRecord;
  /** What revoke deletes, in order, after removing the record (the anchor first: it stops the minted tokens). */
  removals: ObjectRef[];
  /** Cluster-wide grants: the shared ClusterRole, deleted once no binding refers to it. */
  sharedClusterRole?: ObjectRef;
}

const REFUSED: Record<string, string> = {
  'kube-system': "it holds the cluster's own identities (controllers, system components)",
  [INSTALL_NAMESPACE]: 'it holds the importer identities of multicluster-service-account',
};

/** Why `namespace` can never be granted (to any target), or undefined. */
function refusedNamespaceReason(namespace: string): string | undefined {
  if (!NEVER_IMPORTABLE_NAMESPACES.includes(namespace)) return undefined;
  return REFUSED[namespace] ?? 'no import may ever name it';
}

/** Fails with a usage error when `g` names a namespace that is never granted. */
export function checkGrantable(g: Grant): void {
  if (grantScope(g) === 'cluster') return;
  const why = refusedNamespaceReason(g.namespace);
  if (why !== undefined) throw new UsageError(`namespace ${g.namespace} is never granted: ${why}`);
}

function importerSubject(targetName: string) {
  return [{ kind: 'ServiceAccount', name: targetName, namespace: INSTALL_NAMESPACE }];
}

/** The objects and record of grant `g` of a source to target `targetName`. */
export function grantPlan(targetName: string, g: Grant): GrantPlan {
  checkGrantable(g);
  const name = grantObjectName(targetName, g);
  const labels = { ...sourceLabels(targetName), [GRANT_LABEL]: grantLabelValue(g) };
  const record: GrantRecord = {
    importer: { apiVersion: 'v1', kind: 'ServiceAccount', name: targetName, namespace: INSTALL_NAMESPACE },
    key: grantAnnotationKey(g),
    value: grantAnnotationValue(g),
  };
  const scope = grantScope(g);
  if (scope === 'cluster') {
    const clusterRole: Manifest = {
      apiVersion: RBAC,
      kind: 'ClusterRole',
      metadata: { name: TOKEN_MINTER_CLUSTER_ROLE, labels: { ...sharedLabels } },
      rules: [
        { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
        // Served by no API: the source's importer admission policy lets unbound tokens through only with it.
        { apiGroups: [UNBOUND_TOKENS.group], resources: [UNBOUND_TOKENS.resource], verbs: [UNBOUND_TOKENS.verb] },
      ],
    };
    const binding: Manifest = {
      apiVersion: RBAC,
      kind: 'ClusterRoleBinding',
      metadata: { name, labels },
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: TOKEN_MINTER_CLUSTER_ROLE },
      subjects: importerSubject(targetName),
    };
    return { targetName, grant: g, scope, objects: [clusterRole, binding], record, removals: [refOf(binding)], sharedClusterRole: refOf(clusterRole) };
  }
  const namespace = g.namespace;
  const anchor: Manifest = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels }, type: 'Opaque' };
  const role: Manifest = {
    apiVersion: RBAC,
    kind: 'Role',
    metadata: { name, namespace, labels },
    rules: [
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], ...(g.serviceAccount === ALL ? {} : { resourceNames: [g.serviceAccount] }) },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch'] },
    ],
  };
  const binding: Manifest = {
    apiVersion: RBAC,
    kind: 'RoleBinding',
    metadata: { name, namespace, labels },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name },
    subjects: importerSubject(targetName),
  };
  return { targetName, grant: g, scope, objects: [anchor, role, binding], record, removals: [refOf(anchor), refOf(binding), refOf(role)] };
}

/** The anchor Secret of a plan, if it has one. */
function anchorOf(plan: GrantPlan): ObjectRef | undefined {
  const a = anchorFor(plan.targetName, plan.grant);
  return a && { apiVersion: 'v1', kind: 'Secret', ...a };
}

/** The warning a cluster-wide grant prints (stderr) before anything is written. */
export function clusterWideWarning(targetName: string, sourceName: string): string {
  return (
    `WARNING: a cluster-wide grant lets cluster ${targetName} obtain tokens for every ServiceAccount of cluster ${sourceName} ` +
    `except those in kube-system and ${INSTALL_NAMESPACE} (the controller refuses those; the RBAC binding itself covers every namespace), ` +
    'and tokens minted under it cannot be revoked before they expire (they are bound to no anchor Secret). ' +
    'Prefer granting ServiceAccounts or namespaces.'
  );
}

/** `--dry-run` lines of a grant. */
export function describeGrantPlan(plan: GrantPlan, source: string): string[] {
  const s = `[source ${source}]`;
  return [
    `${s} grant ${describeGrant(plan.grant)} to target ${plan.targetName}`,
    ...plan.objects.map((m) => `${s} apply ${describeRef(refOf(m))}`),
    `${s} record the grant on ${describeRef(plan.record.importer)}: annotation ${plan.record.key}=${plan.record.value}`,
  ];
}

/** `--dry-run` lines of a revoke. */
export function describeRevokePlan(plan: GrantPlan, source: string): string[] {
  const s = `[source ${source}]`;
  const anchor = anchorOf(plan);
  return [
    `${s} revoke ${describeGrant(plan.grant)} from target ${plan.targetName}`,
    `${s} remove annotation ${plan.record.key} from ${describeRef(plan.record.importer)}`,
    ...plan.removals.map((r) => `${s} delete ${describeRef(r)}${anchor && r.kind === anchor.kind && r.name === anchor.name ? ' (tokens minted under the grant stop authenticating)' : ''}`),
    ...(plan.sharedClusterRole ? [`${s} delete ${describeRef(plan.sharedClusterRole)} if no other binding uses it`] : []),
  ];
}

const RESOURCES: Record<string, { group: string; resource: string }> = {
  Secret: { group: '', resource: 'secrets' },
  Role: { group: RBAC_GROUP, resource: 'roles' },
  RoleBinding: { group: RBAC_GROUP, resource: 'rolebindings' },
  ClusterRole: { group: RBAC_GROUP, resource: 'clusterroles' },
  ClusterRoleBinding: { group: RBAC_GROUP, resource: 'clusterrolebindings' },
  ServiceAccount: { group: '', resource: 'serviceaccounts' },
};

/** The permission to do `verb` on `r`'s kind where `r` lives. */
export function permissionFor(verb: string, r: { kind: string; namespace?: string }): Permission {
  const res = RESOURCES[r.kind];
  if (res === undefined) throw new Error(`no resource known for kind ${r.kind}`);
  return { verb, ...res, ...(r.namespace ? { namespace: r.namespace } : {}) };
}

/**
 * Grant: create and patch every object, patch the importer, and hold the token right being
 * granted (RBAC lets nobody grant what they lack, unless they may escalate).
 */
export function grantPermissions(plan: GrantPlan): Permission[] {
  const where = plan.scope === 'cluster' ? {} : { namespace: plan.grant.namespace };
  return [
    ...plan.objects.flatMap((m) => ['create', 'patch'].map((verb) => permissionFor(verb, refOf(m)))),
    permissionFor('get', plan.record.importer),
    permissionFor('patch', plan.record.importer),
    { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token', ...where },
  ];
}

/** Revoke: patch the importer, read and delete every object. */
export function revokePermissions(plan: GrantPlan): Permission[] {
  return [
    permissionFor('get', plan.record.importer),
    permissionFor('patch', plan.record.importer),
    ...plan.removals.flatMap((r) => ['get', 'delete'].map((verb) => permissionFor(verb, r))),
    ...(plan.sharedClusterRole ? [permissionFor('delete', plan.sharedClusterRole)] : []),
  ];
}

/** Whether labels mark an object kubemcsa made for a grant (what revoke and unbootstrap may delete). */
export function isGrantObject(labels: Record<string, string> | undefined): boolean {
  return isManaged(labels) && labels?.[GRANT_LABEL] !== undefined;
}

/** Label selector finding every grant object made for one target (with `sourceSelector` it is the target's). */
export function grantObjectsSelector(targetSelector: string): string {
  return `${targetSelector},${GRANT_LABEL}`;
}

/** The RBAC kinds of grant objects, in the order unbootstrap deletes them (bindings before roles). */
export const GRANT_RBAC_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: RBAC, kind: 'ClusterRoleBinding' },
  { apiVersion: RBAC, kind: 'RoleBinding' },
  { apiVersion: RBAC, kind: 'Role' },
];

/**
 * The anchor Secret of each grant Role found: same namespace and name. (Found this way rather than
 * by listing Secrets in every namespace, which would need the right to read every Secret.)
 */
export function anchorsOfRoles(roles: ReadonlyArray<{ kind: string; name: string; namespace?: string }>): ObjectRef[] {
  return roles.filter((r) => r.kind === 'Role' && r.namespace !== undefined).map((r) => ({ apiVersion: 'v1', kind: 'Secret', name: r.name, namespace: r.namespace! }));
}
