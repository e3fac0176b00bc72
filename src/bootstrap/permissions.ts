// What the user's own credentials must be allowed to do for bootstrap (or unbootstrap) to finish,
// checked in the pre-flight with SelfSubjectAccessReviews so a missing permission fails before
// anything is written (or deleted).
import { API_GROUP, IMPORT_PLURAL } from '../constants.js';
import { permissionFor } from './grant.js';
import type { BootstrapPlan, UnbootstrapPlan } from './plan.js';

export interface Permission {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
}

/** `create clusterrolebindings.rbac.authorization.k8s.io`, `create serviceaccounts/token in ns`. */
export function describePermission(p: Permission): string {
  const resource = `${p.resource}${p.group ? `.${p.group}` : ''}${p.subresource ? `/${p.subresource}` : ''}`;
  return `${p.verb} ${resource}${p.namespace ? ` in namespace ${p.namespace}` : ''}`;
}

const RBAC = 'rbac.authorization.k8s.io';

/** Server-side apply creates absent objects and patches present ones: both verbs are needed. */
function applyable(group: string, resource: string, namespace?: string): Permission[] {
  return ['create', 'patch'].map((verb) => ({ verb, group, resource, ...(namespace ? { namespace } : {}) }));
}

export function sourcePermissions(plan: BootstrapPlan): Permission[] {
  const ns = plan.importer.namespace;
  // The importer's read bindings as the plan has them (with --source-namespaces, the install namespace too).
  const bindings = plan.source
    .filter((m) => m.kind === 'ClusterRoleBinding' || (m.kind === 'RoleBinding' && m.metadata.namespace !== ns))
    .flatMap((m) => applyable(RBAC, m.kind === 'ClusterRoleBinding' ? 'clusterrolebindings' : 'rolebindings', m.metadata.namespace));
  return [
    { verb: 'get', group: '', resource: 'namespaces' },
    ...applyable('admissionregistration.k8s.io', 'validatingadmissionpolicies'),
    ...applyable('admissionregistration.k8s.io', 'validatingadmissionpolicybindings'),
    ...applyable(RBAC, 'clusterroles'),
    ...applyable('', 'serviceaccounts', ns),
    ...bindings,
    ...applyable(RBAC, 'roles', ns),
    ...applyable(RBAC, 'rolebindings', ns),
    { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token', namespace: ns },
  ];
}

export function targetPermissions(plan: BootstrapPlan): Permission[] {
  const ns = plan.secret.namespace;
  return [{ verb: 'get', group: '', resource: 'namespaces' }, ...applyable(API_GROUP, IMPORT_PLURAL, ns), ...applyable('', 'secrets', ns), { verb: 'get', group: '', resource: 'secrets', namespace: ns }];
}

/** Reads and deletes. */
function removable(group: string, resource: string, namespace?: string): Permission[] {
  return ['get', 'delete'].map((verb) => ({ verb, group, resource, ...(namespace ? { namespace } : {}) }));
}

/**
 * Unbootstrap: what it reads and deletes on each side, including the bindings for the target it
 * found in the source (listing them, done first, shows the list permissions). Deleting the
 * install namespace is not asked for: it happens last and only when the namespace is left
 * empty, so failing there leaves just that namespace, which a re-run removes.
 */
export function unbootstrapPermissions(
  plan: UnbootstrapPlan,
  bindings: Array<{ kind: string; namespace?: string }>,
  grantObjects: Array<{ kind: string; namespace?: string }> = [],
): { target: Permission[]; source: Permission[] } {
  const ns = plan.namespace;
  const bindingDeletes = bindings.map((b) => ({
    verb: 'delete',
    group: RBAC,
    resource: b.kind === 'ClusterRoleBinding' ? 'clusterrolebindings' : 'rolebindings',
    ...(b.namespace ? { namespace: b.namespace } : {}),
  }));
  return {
    target: [{ verb: 'get', group: '', resource: 'namespaces' }, ...removable(API_GROUP, IMPORT_PLURAL, ns), ...removable('', 'secrets', ns)],
    source: [
      { verb: 'get', group: '', resource: 'namespaces' },
      ...bindingDeletes,
      // The objects of the target's grants (anchors, roles, bindings) wherever they are; anchors are read first.
      ...grantObjects.flatMap((o) => (o.kind === 'Secret' ? ['get', 'delete'] : ['delete']).map((verb) => permissionFor(verb, o))),
      ...removable(RBAC, 'rolebindings', ns),
      ...removable(RBAC, 'roles', ns),
      ...removable('', 'serviceaccounts', ns),
      ...removable(RBAC, 'clusterroles'),
      ...removable('admissionregistration.k8s.io', 'validatingadmissionpolicies'),
      ...removable('admissionregistration.k8s.io', 'validatingadmissionpolicybindings'),
    ],
  };
}
