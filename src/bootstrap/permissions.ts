// What the user's own credentials must be allowed to do for bootstrap to finish, checked in the
// pre-flight with SelfSubjectAccessReviews so a missing permission fails before anything is written.
import { API_GROUP, IMPORT_PLURAL } from '../constants.js';
import type { BootstrapPlan } from './plan.js';

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
  const bindings =
    plan.input.sourceNamespaces === undefined
      ? applyable(RBAC, 'clusterrolebindings')
      : plan.input.sourceNamespaces.flatMap((n) => applyable(RBAC, 'rolebindings', n));
  return [
    { verb: 'get', group: '', resource: 'namespaces' },
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
