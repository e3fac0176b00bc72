import * as t from 'io-ts';
import { cappedArray, cappedRecord } from '../api/decode.js';

/**
 * `admission.k8s.io/v1` AdmissionReview. Not in the Kubernetes OpenAPI document, so there is no
 * client-node model for it: these codecs are the source of the types.
 */
export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_KIND = 'AdmissionReview';

const NonEmptyString = new t.Type<string, string, unknown>(
  'non-empty string',
  (u): u is string => typeof u === 'string' && u.length > 0,
  (u, c) => (typeof u === 'string' && u.length > 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
);

const GroupVersionKind = t.type({ group: t.string, version: t.string, kind: t.string });
type GroupVersionKind = t.TypeOf<typeof GroupVersionKind>;

const GroupVersionResource = t.type({ group: t.string, version: t.string, resource: t.string });

const UserInfo = t.partial({
  username: t.string,
  uid: t.string,
  groups: cappedArray(t.string),
  extra: cappedRecord(cappedArray(t.string)),
});

const Operation = t.keyof({ CREATE: null, UPDATE: null, DELETE: null, CONNECT: null });
type Operation = t.TypeOf<typeof Operation>;

export const AdmissionRequest = t.intersection([
  t.type({ uid: NonEmptyString, kind: GroupVersionKind, operation: Operation }),
  t.partial({
    resource: GroupVersionResource,
    subResource: t.string,
    requestKind: GroupVersionKind,
    requestResource: GroupVersionResource,
    requestSubResource: t.string,
    name: t.string,
    namespace: t.string,
    userInfo: UserInfo,
    object: t.unknown,
    oldObject: t.unknown,
    options: t.unknown,
    dryRun: t.boolean,
  }),
]);
export type AdmissionRequest = t.TypeOf<typeof AdmissionRequest>;

/** What the API server sends. Only v1 is served (the webhook configuration asks for v1 only). */
export const AdmissionReviewRequest = t.type({
  apiVersion: t.literal(ADMISSION_API_VERSION),
  kind: t.literal(ADMISSION_KIND),
  request: AdmissionRequest,
});
export type AdmissionReviewRequest = t.TypeOf<typeof AdmissionReviewRequest>;

/** metav1.Status, as carried in a denied AdmissionResponse. */
const ResultStatus = t.partial({ code: t.number, message: t.string, reason: t.string, status: t.string });
type ResultStatus = t.TypeOf<typeof ResultStatus>;

export const AdmissionResponse = t.intersection([
  t.type({ uid: t.string, allowed: t.boolean }),
  t.partial({
    status: ResultStatus,
    patch: t.string,
    patchType: t.literal('JSONPatch'),
    warnings: t.array(t.string),
    auditAnnotations: t.record(t.string, t.string),
  }),
]);
export type AdmissionResponse = t.TypeOf<typeof AdmissionResponse>;

// Arrays and maps decode through cappedArray/cappedRecord: a body of a million bad elements stops
// at the first few errors instead of collecting a million.
// The parts of a Pod the webhook reads or writes. io-ts `type` keeps unknown fields, so a decoded
// pod is still the whole pod and the patch diff sees everything else unchanged.

export const VolumeMount = t.intersection([
  t.type({ name: t.string, mountPath: t.string }),
  t.partial({ readOnly: t.boolean, subPath: t.string }),
]);
export type VolumeMount = t.TypeOf<typeof VolumeMount>;

export const Container = t.intersection([t.type({ name: t.string }), t.partial({ volumeMounts: cappedArray(VolumeMount) })]);
export type Container = t.TypeOf<typeof Container>;

const VolumeProjection = t.partial({
  configMap: t.partial({ name: t.string, items: cappedArray(t.partial({ key: t.string, path: t.string })) }),
  serviceAccountToken: t.partial({ path: t.string, audience: t.string, expirationSeconds: t.number }),
});

export const Volume = t.intersection([
  t.type({ name: t.string }),
  t.partial({
    secret: t.partial({ secretName: t.string, optional: t.boolean, defaultMode: t.number }),
    // A federated import's projected volume: its ConfigMap's files and the pod's own token.
    projected: t.partial({ sources: cappedArray(VolumeProjection) }),
  }),
]);
export type Volume = t.TypeOf<typeof Volume>;

const PodSpec = t.intersection([
  t.type({ containers: cappedArray(Container) }),
  t.partial({ initContainers: cappedArray(Container), volumes: cappedArray(Volume) }),
]);
type PodSpec = t.TypeOf<typeof PodSpec>;

const PodMeta = t.partial({
  name: t.string,
  generateName: t.string,
  namespace: t.string,
  annotations: cappedRecord(t.string),
});

export const Pod = t.intersection([t.type({ spec: PodSpec }), t.partial({ apiVersion: t.string, kind: t.string, metadata: PodMeta })]);
export type Pod = t.TypeOf<typeof Pod>;

/** The core/v1 Pod kind, as in `request.kind`. */
export function isPodKind(gvk: GroupVersionKind): boolean {
  return gvk.group === '' && gvk.version === 'v1' && gvk.kind === 'Pod';
}

/** The AdmissionReview answering with `response`, as the bytes of the HTTP answer. */
export function serializeReview(response: AdmissionResponse): Buffer {
  return Buffer.from(JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_KIND, response }), 'utf8');
}

/** An allowing response, with the JSON Patch (base64, as the API server expects it) when there is one. */
export function allow(uid: string, extra: { patch?: unknown[]; warnings?: string[] } = {}): AdmissionResponse {
  const r: AdmissionResponse = { uid, allowed: true };
  if (extra.patch && extra.patch.length > 0) {
    r.patchType = 'JSONPatch';
    r.patch = Buffer.from(JSON.stringify(extra.patch)).toString('base64');
  }
  if (extra.warnings && extra.warnings.length > 0) r.warnings = extra.warnings;
  return r;
}

export function deny(uid: string, message: string, code = 403): AdmissionResponse {
  const reason = code === 400 ? 'BadRequest' : code === 403 ? 'Forbidden' : code === 503 ? 'ServiceUnavailable' : code === 504 ? 'Timeout' : 'InternalError';
  return { uid, allowed: false, status: { status: 'Failure', code, reason, message } };
}
