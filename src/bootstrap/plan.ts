// The bootstrap plan: which objects kubemcsa applies in the source and the target cluster for one
// registration, and which it deletes on unbootstrap. Pure: no API calls here (cli/lib applies it).
import { API_GROUP, API_GROUP_VERSION, IMPORT_KIND, INSTALL_NAMESPACE } from '../constants.js';
import { GRANT_LABEL } from '../consent/grants.js';
import { secretNameForImport } from '../naming.js';
import {
  IMPORTER_CLUSTER_ROLE,
  importerBindingName,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  selfRoleName,
  sharedLabels,
  SOURCE_LABEL,
  labelValueFor,
  sourceLabels,
  sourceSelector,
} from './names.js';

/** A Kubernetes object as kubemcsa applies it (server-side apply needs apiVersion and kind). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Identifies an object for reads, deletes and messages. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export function refOf(m: Manifest): ObjectRef {
  return { apiVersion: m.apiVersion, kind: m.kind, name: m.metadata.name, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}) };
}

/** `Kind namespace/name` (or `Kind name` when cluster-scoped). */
export function describeRef(r: ObjectRef): string {
  return `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
}

export function sameRef(a: ObjectRef, b: ObjectRef): boolean {
  return a.kind === b.kind && a.name === b.name && (a.namespace ?? '') === (b.namespace ?? '');
}

interface BootstrapInput {
  targetName: string;
  sourceName: string;
  /** Namespaces the importer may read ServiceAccounts in; undefined = cluster-wide. */
  sourceNamespaces?: string[];
  /** Lifetime of the registration's tokens (default: DEFAULT_REGISTRATION_SECONDS). */
  registrationSeconds?: number;
}

/** The registration's token lifetime unless `--registration-duration` says otherwise (24 h). */
export const DEFAULT_REGISTRATION_SECONDS = 86_400;

export interface BootstrapPlan {
  input: BootstrapInput;
  /** Created if absent, never modified when it exists (it may belong to an installation). */
  sourceNamespace: Manifest;
  /** Applied in order, after the namespace. */
  source: Manifest[];
  /** Bindings carrying this selector in the source that are not in `source` are stale: deleted (grants' bindings never match it). */
  pruneSelector: string;
  targetNamespace: Manifest;
  /** The ServiceAccountImport that registers the source in the target. */
  registration: Manifest & { spec: { clusterName: string; namespace: string; name: string; expirationSeconds: number } };
  /** Its generated Secret and the importer ServiceAccount whose token it holds. */
  secret: { name: string; namespace: string };
  importer: { name: string; namespace: string };
  expirationSeconds: number;
}

const RBAC = 'rbac.authorization.k8s.io/v1';

/**
 * The importer's only permissions from bootstrap: read ServiceAccounts. Token rights come from
 * grants (src/bootstrap/grant.ts), plus the self Role for its own token. No Secret verbs.
 */
const IMPORTER_RULES = [{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch'] }] as const;

/** The namespaces the importer reads ServiceAccounts in: the given ones plus the install namespace (its own ServiceAccount records the grants). */
function readNamespaces(sourceNamespaces: string[]): string[] {
  return [...new Set([...sourceNamespaces, INSTALL_NAMESPACE])];
}

export function namespaceManifest(name: string): Manifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...sharedLabels } } };
}

function importerSubject(targetName: string) {
  return [{ kind: 'ServiceAccount', name: targetName, namespace: INSTALL_NAMESPACE }];
}

const ADMISSION = 'admissionregistration.k8s.io/v1';
/** The source's ValidatingAdmissionPolicy (and its binding) over every importer's TokenRequests. */
const IMPORTER_ADMISSION_POLICY = 'multicluster-service-account-importers';
/** A permission no Kubernetes API serves: only a cluster-wide grant carries it, and with it the right to unbound tokens. */
export const UNBOUND_TOKENS = { group: API_GROUP, resource: 'unboundtokens', verb: 'create' } as const;

/**
 * What the source's API server itself enforces on every TokenRequest made by an importer (any
 * ServiceAccount of the install namespace), whatever RBAC allows and whoever holds the
 * registration's token: no token of a kube-system ServiceAccount; in the install namespace, only
 * the importer's own; elsewhere, only tokens bound to the anchor of a grant to that importer for
 * that ServiceAccount (or its namespace grant), unless a cluster-wide grant gave it unbound tokens.
 * So a hostile target cannot mint a token that revoking the grant would not stop.
 */
function importerAdmissionPolicy(): Manifest[] {
  const sa = `system:serviceaccount:${INSTALL_NAMESPACE}:`;
  const ref = 'object.spec.boundObjectRef';
  return [
    {
      apiVersion: ADMISSION,
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: IMPORTER_ADMISSION_POLICY, labels: { ...sharedLabels } },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['serviceaccounts/token'] }] },
        matchConditions: [{ name: 'importer', expression: `request.userInfo.username.startsWith('${sa}')` }],
        variables: [
          { name: 'importer', expression: `request.userInfo.username.substring(${sa.length})` },
          { name: 'prefix', expression: `'mcsa-grant.' + variables.importer + '.' + request.name + '.'` },
          { name: 'namespacePrefix', expression: `'mcsa-grant.' + variables.importer + '.all.'` },
        ],
        validations: [
          { expression: "request.namespace != 'kube-system'", reason: 'Forbidden', message: 'multicluster-service-account importers never obtain tokens of kube-system ServiceAccounts' },
          {
            expression: `request.namespace != '${INSTALL_NAMESPACE}' || request.name == variables.importer`,
            reason: 'Forbidden',
            message: `a multicluster-service-account importer obtains no token in ${INSTALL_NAMESPACE} but its own`,
          },
          {
            expression:
              `request.namespace == '${INSTALL_NAMESPACE}' || ` +
              // has() on each field: an absent boundObjectRef may still be present as an empty object.
              `(has(${ref}) && has(${ref}.kind) && has(${ref}.name) && ${ref}.kind == 'Secret' && ` +
              `(${ref}.name.startsWith(variables.prefix) || ${ref}.name.startsWith(variables.namespacePrefix) || ` +
              `(size(variables.prefix) > 245 && ${ref}.name.startsWith('mcsa-grant.')))) || ` +
              `authorizer.group('${UNBOUND_TOKENS.group}').resource('${UNBOUND_TOKENS.resource}').check('${UNBOUND_TOKENS.verb}').allowed()`,
            reason: 'Forbidden',
            message: "a multicluster-service-account importer's token must be bound to the anchor Secret of its grant (boundObjectRef)",
          },
        ],
      },
    },
    {
      apiVersion: ADMISSION,
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: IMPORTER_ADMISSION_POLICY, labels: { ...sharedLabels } },
      spec: { policyName: IMPORTER_ADMISSION_POLICY, validationActions: ['Deny'] },
    },
  ];
}

/** The objects of one registration: source cluster `sourceName` imported into `targetName`. */
export function bootstrapPlan(input: BootstrapInput): BootstrapPlan {
  const { targetName, sourceName } = input;
  const expirationSeconds = input.registrationSeconds ?? DEFAULT_REGISTRATION_SECONDS;
  const labels = sourceLabels(targetName);
  const bindingName = importerBindingName(targetName);
  const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: IMPORTER_CLUSTER_ROLE };
  const clusterRole: Manifest = {
    apiVersion: RBAC,
    kind: 'ClusterRole',
    metadata: { name: IMPORTER_CLUSTER_ROLE, labels: { ...sharedLabels } },
    rules: IMPORTER_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })),
  };
  const serviceAccount: Manifest = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: targetName, namespace: INSTALL_NAMESPACE, labels } };
  const bindings: Manifest[] =
    input.sourceNamespaces === undefined
      ? [{ apiVersion: RBAC, kind: 'ClusterRoleBinding', metadata: { name: bindingName, labels }, roleRef, subjects: importerSubject(targetName) }]
      : readNamespaces(input.sourceNamespaces).map((ns) => ({
          apiVersion: RBAC,
          kind: 'RoleBinding',
          metadata: { name: bindingName, namespace: ns, labels },
          roleRef,
          subjects: importerSubject(targetName),
        }));
  const selfName = selfRoleName(targetName);
  const selfRole: Manifest = {
    apiVersion: RBAC,
    kind: 'Role',
    metadata: { name: selfName, namespace: INSTALL_NAMESPACE, labels },
    rules: [
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: [targetName], verbs: ['create'] },
      { apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [targetName], verbs: ['get'] },
    ],
  };
  const selfBinding: Manifest = {
    apiVersion: RBAC,
    kind: 'RoleBinding',
    metadata: { name: selfName, namespace: INSTALL_NAMESPACE, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: selfName },
    subjects: importerSubject(targetName),
  };
  const registration = {
    apiVersion: API_GROUP_VERSION,
    kind: IMPORT_KIND,
    metadata: {
      name: sourceName,
      namespace: INSTALL_NAMESPACE,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SOURCE_LABEL]: labelValueFor(sourceName) },
    },
    spec: { clusterName: sourceName, namespace: INSTALL_NAMESPACE, name: targetName, expirationSeconds },
  };
  return {
    input,
    sourceNamespace: namespaceManifest(INSTALL_NAMESPACE),
    source: [...importerAdmissionPolicy(), clusterRole, serviceAccount, ...bindings, selfRole, selfBinding],
    pruneSelector: `${sourceSelector(targetName)},!${GRANT_LABEL}`,
    targetNamespace: namespaceManifest(INSTALL_NAMESPACE),
    registration,
    secret: { name: secretNameForImport(sourceName), namespace: INSTALL_NAMESPACE },
    importer: { name: targetName, namespace: INSTALL_NAMESPACE },
    expirationSeconds,
  };
}

/** Bindings of ours found in the source for this target that the plan no longer wants. */
export function staleBindings(plan: BootstrapPlan, found: ObjectRef[]): ObjectRef[] {
  const wanted = plan.source.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding').map(refOf);
  return found.filter((f) => (f.kind === 'RoleBinding' || f.kind === 'ClusterRoleBinding') && !wanted.some((w) => sameRef(w, f)));
}

/** One line per step, as `--dry-run` prints them. */
export function describePlan(plan: BootstrapPlan, source: string, target: string): string[] {
  const s = `[source ${source}]`;
  const t = `[target ${target}]`;
  return [
    `${s} ensure Namespace ${plan.sourceNamespace.metadata.name} exists`,
    ...plan.source.map((m) => `${s} apply ${describeRef(refOf(m))}`),
    `${s} delete bindings labelled ${plan.pruneSelector} that are not listed above`,
    `${t} ensure Namespace ${plan.targetNamespace.metadata.name} exists`,
    `${t} apply ${describeRef(refOf(plan.registration))} (spec: clusterName=${plan.registration.spec.clusterName}, namespace=${plan.registration.spec.namespace}, name=${plan.registration.spec.name}, expirationSeconds=${plan.registration.spec.expirationSeconds})`,
    `${s} mint a token for ServiceAccount ${plan.importer.namespace}/${plan.importer.name} (TokenRequest, ${plan.expirationSeconds} s) unless the Secret's token is still good`,
    `${t} apply Secret ${plan.secret.namespace}/${plan.secret.name} with that token, the source server and CA`,
  ];
}

/**
 * What `bootstrap --dry-run -o yaml|json` prints: every object bootstrap applies, by cluster, in
 * the order it applies them. The registration's Secret is not among them: it holds a token
 * minted from the source when bootstrap runs, which no manifest (nor a Git repository) should hold.
 */
export function appliedObjects(plan: BootstrapPlan): { source: Manifest[]; target: Manifest[] } {
  return { source: [plan.sourceNamespace, ...plan.source], target: [plan.targetNamespace, plan.registration] };
}

/** What unbootstrap removes for one registration. */
export interface UnbootstrapPlan {
  /** Target: the registration and its Secret (GC would delete the Secret; not every cluster runs GC). */
  target: ObjectRef[];
  /** Source: every binding of ours for this target is found by `sourceSelector`, then these. */
  sourceSelector: string;
  source: ObjectRef[];
  /** The shared ClusterRole, removed once no binding of ours refers to it… */
  clusterRole: ObjectRef;
  /** …and then the importers' admission policy and its binding. */
  admissionPolicy: ObjectRef[];
  namespace: string;
}

export function unbootstrapPlan(input: { targetName: string; sourceName: string }): UnbootstrapPlan {
  const { targetName, sourceName } = input;
  const selfName = selfRoleName(targetName);
  return {
    target: [
      { apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name: sourceName, namespace: INSTALL_NAMESPACE },
      { apiVersion: 'v1', kind: 'Secret', name: secretNameForImport(sourceName), namespace: INSTALL_NAMESPACE },
    ],
    sourceSelector: sourceSelector(targetName),
    source: [
      { apiVersion: RBAC, kind: 'ClusterRoleBinding', name: importerBindingName(targetName) },
      { apiVersion: RBAC, kind: 'RoleBinding', name: selfName, namespace: INSTALL_NAMESPACE },
      { apiVersion: RBAC, kind: 'Role', name: selfName, namespace: INSTALL_NAMESPACE },
      // Deleting the ServiceAccount revokes every token minted for it.
      { apiVersion: 'v1', kind: 'ServiceAccount', name: targetName, namespace: INSTALL_NAMESPACE },
    ],
    clusterRole: { apiVersion: RBAC, kind: 'ClusterRole', name: IMPORTER_CLUSTER_ROLE },
    admissionPolicy: importerAdmissionPolicy().map(refOf).reverse(),
    namespace: INSTALL_NAMESPACE,
  };
}

/** A binding found in a cluster, as far as the ClusterRole clean-up cares. */
export interface BindingInfo {
  kind: string;
  name: string;
  namespace?: string;
  roleRef: { kind: string; name: string };
}

/** A shared ClusterRole (the importer's by default) can go once no remaining binding refers to it. */
export function clusterRoleStillUsed(remaining: BindingInfo[], clusterRole = IMPORTER_CLUSTER_ROLE): BindingInfo[] {
  return remaining.filter((b) => b.roleRef.kind === 'ClusterRole' && b.roleRef.name === clusterRole);
}

/** Something found in the install namespace while deciding whether to delete it. */
export interface NamespaceItem {
  kind: string;
  name: string;
}

/** Objects every namespace has on its own: they do not keep the namespace alive. */
const BUILT_IN: ReadonlyArray<NamespaceItem> = [
  { kind: 'ServiceAccount', name: 'default' },
  { kind: 'ConfigMap', name: 'kube-root-ca.crt' },
];

/**
 * What keeps the install namespace from being deleted: anything in it that is not built in. An
 * empty list means nothing of an installation or of another registration is left.
 */
export function namespaceBlockers(items: NamespaceItem[]): NamespaceItem[] {
  return items.filter((i) => !BUILT_IN.some((b) => b.kind === i.kind && b.name === i.name));
}
