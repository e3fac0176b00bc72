import * as t from 'io-ts';

export const ConditionStatus = t.keyof({ True: null, False: null, Unknown: null });
export type ConditionStatus = t.TypeOf<typeof ConditionStatus>;

/** A condition in the standard Kubernetes shape (metav1.Condition). */
export const Condition = t.intersection([
  t.type({ type: t.string, status: ConditionStatus }),
  t.partial({ reason: t.string, message: t.string, lastTransitionTime: t.string, observedGeneration: t.number }),
]);
export type Condition = t.TypeOf<typeof Condition>;

export const ObjectMeta = t.intersection([
  t.type({ name: t.string }),
  t.partial({
    namespace: t.string,
    uid: t.string,
    resourceVersion: t.string,
    generation: t.number,
    creationTimestamp: t.union([t.string, t.unknown]),
    deletionTimestamp: t.union([t.string, t.unknown]),
    labels: t.record(t.string, t.string),
    annotations: t.record(t.string, t.string),
  }),
]);
export type ObjectMeta = t.TypeOf<typeof ObjectMeta>;

/** How an import reaches its source: a token minted there and copied into a Secret (the default), or the pod's own token (ADR 0022). */
const ImportModes = { Token: 'Token', Federated: 'Federated' } as const;

/** A token import (`spec.mode` Token or unset): a remote ServiceAccount whose tokens are copied into a Secret. */
const TokenImportSpec = t.intersection([
  t.type({ clusterName: t.string, namespace: t.string, name: t.string }),
  t.partial({ mode: t.literal(ImportModes.Token), expirationSeconds: t.number, audiences: t.array(t.string) }),
]);
export type TokenImportSpec = t.TypeOf<typeof TokenImportSpec>;

/** A federated import: the pod's own ServiceAccount token, for the audience of the federated source `clusterName`. */
const FederatedImportSpec = t.intersection([
  t.type({ mode: t.literal(ImportModes.Federated), clusterName: t.string }),
  t.partial({ expirationSeconds: t.number }),
]);
type FederatedImportSpec = t.TypeOf<typeof FederatedImportSpec>;

function isFederatedInput(u: unknown): boolean {
  return typeof u === 'object' && u !== null && (u as { mode?: unknown }).mode === ImportModes.Federated;
}

/**
 * The spec, discriminated by `mode`: a federated spec has no remote `namespace`/`name`, so code
 * must narrow (`isFederatedSpec`) before it can read them. Decoded by the branch `mode` names, so
 * a broken token spec reports only the token fields.
 */
const ImportSpec: t.Type<TokenImportSpec | FederatedImportSpec, unknown, unknown> = new t.Type<TokenImportSpec | FederatedImportSpec, unknown, unknown>(
  'ImportSpec',
  (u): u is TokenImportSpec | FederatedImportSpec => FederatedImportSpec.is(u) || TokenImportSpec.is(u),
  (u, c) => {
    const branch = isFederatedInput(u) ? FederatedImportSpec : TokenImportSpec;
    // The branch stands in this field's place, so error paths read `spec.name`, not `spec.0.name`.
    const last = c[c.length - 1];
    return branch.validate(u, last ? [...c.slice(0, -1), { ...last, type: branch }] : c);
  },
  (a) => a,
);
type ImportSpec = TokenImportSpec | FederatedImportSpec;

export function isFederatedSpec(spec: ImportSpec): spec is FederatedImportSpec {
  return spec.mode === ImportModes.Federated;
}

export const ImportStatus = t.partial({
  secrets: t.array(t.type({ name: t.string })),
  conditions: t.array(Condition),
  observedGeneration: t.number,
  expirationTimestamp: t.string,
  /** Federated imports: the audience of the projected token (the source's), as the controller last read it from the source's record. */
  audience: t.string,
  /** Federated imports: the projected token's lifetime in seconds. */
  expirationSeconds: t.number,
});
export type ImportStatus = t.TypeOf<typeof ImportStatus>;

/** A ServiceAccountImport as read from the API (spec validated by the CRD schema as well). */
export const ServiceAccountImport = t.intersection([
  t.type({ metadata: ObjectMeta, spec: ImportSpec }),
  t.partial({ apiVersion: t.string, kind: t.string, status: ImportStatus }),
]);
export type ServiceAccountImport = t.TypeOf<typeof ServiceAccountImport>;
export type TokenImport = ServiceAccountImport & { spec: TokenImportSpec };
export type FederatedImport = ServiceAccountImport & { spec: FederatedImportSpec };

export function isFederatedImport(sai: ServiceAccountImport): sai is FederatedImport {
  return isFederatedSpec(sai.spec);
}

export function isTokenImport(sai: ServiceAccountImport): sai is TokenImport {
  return !isFederatedSpec(sai.spec);
}

/**
 * The one projection of an import that caches keep (the controller's and the webhook's): name,
 * namespace, uid, generation, resourceVersion, spec and status. No managedFields, labels or
 * annotations, so caches stay small with many imports; readers that need an annotation (the
 * controller's rotation request) take it from the decoded object before projecting.
 */
export function slimImport(sai: ServiceAccountImport): ServiceAccountImport {
  const m = sai.metadata;
  const metadata: ServiceAccountImport['metadata'] = { name: m.name };
  if (m.namespace !== undefined) metadata.namespace = m.namespace;
  if (m.uid !== undefined) metadata.uid = m.uid;
  if (m.generation !== undefined) metadata.generation = m.generation;
  if (m.resourceVersion !== undefined) metadata.resourceVersion = m.resourceVersion;
  return { metadata, spec: sai.spec, ...(sai.status ? { status: sai.status } : {}) };
}

/** Condition types and reasons the controller writes (SPEC §4). */
export const READY = 'Ready';
export const Reasons = {
  TokenIssued: 'TokenIssued',
  ClusterNotFound: 'ClusterNotFound',
  ClusterUnreachable: 'ClusterUnreachable',
  ServiceAccountNotFound: 'ServiceAccountNotFound',
  Forbidden: 'Forbidden',
  Unauthorized: 'Unauthorized',
  InvalidSpec: 'InvalidSpec',
  /** A registration's token expired (the controller was not running to refresh it). */
  TokenExpired: 'TokenExpired',
  SecretConflict: 'SecretConflict',
  TokenRequestFailed: 'TokenRequestFailed',
  /** The target refused the Secret for good (invalid, or denied by an admission policy): no token is minted again until something changes. */
  SecretRejected: 'SecretRejected',
  /** A federated import's ConfigMap is ready: pods get their own token for the source's audience. */
  Federated: 'Federated',
  /** The federated source record (a ConfigMap in the install namespace) lacks a key or holds an invalid value. */
  InvalidFederatedSource: 'InvalidFederatedSource',
  /** A federated import's ConfigMap exists and is controlled by another object. */
  ConfigMapConflict: 'ConfigMapConflict',
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

export const DEFAULT_EXPIRATION_SECONDS = 3600;
export const MIN_EXPIRATION_SECONDS = 600;
/** The schema's maximum (7 days): registrations may be long-lived; tenants are capped lower by policy. */
export const MAX_EXPIRATION_SECONDS = 604_800;
/** A federated import's projected token lives 600 s to 24 h (the source refuses longer-lived tokens). */
export const MAX_FEDERATED_EXPIRATION_SECONDS = 86_400;

/** `namespace/name` of an object. */
export function keyOf(meta: { namespace?: string; name: string }): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}

/** The Ready condition of an import, if any. */
export function readyCondition(sai: { status?: ImportStatus }): Condition | undefined {
  return sai.status?.conditions?.find((c) => c.type === READY);
}

export function isReady(sai: { status?: ImportStatus; metadata: { generation?: number } }): boolean {
  const c = readyCondition(sai);
  return c?.status === 'True';
}
