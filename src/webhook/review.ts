import type * as t from 'io-ts';
import { decode, joinProblems } from '../api/decode.js';
import { IMPORT_ANNOTATION } from '../constants.js';
import {
  ADMISSION_API_VERSION,
  ADMISSION_KIND,
  AdmissionReviewRequest,
  allow,
  deny,
  isPodKind,
  Pod,
  type AdmissionResponse,
} from './admission.js';
import { annotationEntries, countEntries, describePod, importAnnotation, mountPatch, validateEntries, type ImportFound } from './mutate.js';

/** The longest message a bad request is answered (and logged) with. */
const MAX_BAD_REQUEST_MESSAGE = 1024;

/** `s` cut to `max` characters, marked when cut. */
export function clipMessage(s: string, max = MAX_BAD_REQUEST_MESSAGE): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** The caller's mistake: answered with HTTP 400 and this message (bounded), never with a 5xx. */
export class BadReview extends Error {
  override readonly name = 'BadReview';
  constructor(message: string) {
    super(clipMessage(message));
  }
}

/**
 * How many imports one pod may name. Each name may cost an API lookup and adds a volume and a
 * mount per container; a pod with more imports than this is almost certainly a mistake or an
 * attack (an annotation may hold 256 KiB: thousands of names).
 */
export const MAX_IMPORTS_PER_POD = 32;

/**
 * Containers plus init containers of a pod the webhook mutates: each gets a mount per import, so
 * the patch grows with their product. No real pod comes near; past it the pod is denied.
 */
const MAX_CONTAINERS = 200;

interface PlanLimits {
  maxImports: number;
}

/**
 * io-ts decode with a fast path: these codecs never transform, so a value that passes the type
 * guard is its own decoding (no allocation); the full decode only runs to explain a failure.
 * Kept for SPEC §12's throughput target: decoding and planning the benchmark's pod costs 6–7 µs
 * with it and 17–18 µs with `decode` alone, about 8 % of the webhook's CPU per request, and the
 * webhook's throughput sits on the 50 % line of the parse-only server's (docs/benchmarks.md).
 */
function check<A>(codec: t.Type<A, unknown, unknown>, value: unknown): ReturnType<typeof decode<A, unknown>> {
  return codec.is(value) ? { ok: true, value } : decode(codec, value);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes a parsed request body as an admission.k8s.io/v1 AdmissionReview, or throws BadReview. */
export function decodeReview(body: unknown): AdmissionReviewRequest {
  if (!isObject(body)) throw new BadReview(`request body must be a JSON object (an ${ADMISSION_API_VERSION} ${ADMISSION_KIND}), got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}`);
  if (body.kind !== ADMISSION_KIND) throw new BadReview(`unexpected kind ${JSON.stringify(body.kind) ?? 'missing'}: expected ${ADMISSION_KIND}`);
  if (body.apiVersion !== ADMISSION_API_VERSION)
    throw new BadReview(`unsupported apiVersion ${JSON.stringify(body.apiVersion) ?? 'missing'}: this webhook serves ${ADMISSION_API_VERSION} only`);
  if (!isObject(body.request)) throw new BadReview('request: expected an AdmissionRequest object, got ' + (body.request === undefined ? 'missing' : 'a ' + typeof body.request));
  const uid = body.request.uid;
  if (typeof uid !== 'string' || uid === '') throw new BadReview('request.uid: expected a non-empty string, got ' + (uid === undefined ? 'missing' : JSON.stringify(uid)));
  const r = check(AdmissionReviewRequest, body);
  if (!r.ok) throw new BadReview(`invalid ${ADMISSION_KIND}: ${joinProblems(r.problems)}`);
  return r.value;
}

/**
 * The first half of an admission, decided without I/O: either the answer already, or the pod and
 * the import names to look up in `namespace`.
 */
export type AdmissionPlan =
  | { kind: 'answer'; response: AdmissionResponse; mutated: false }
  | { kind: 'lookup'; uid: string; namespace: string; pod: Pod; names: string[] };

function answer(response: AdmissionResponse): AdmissionPlan {
  return { kind: 'answer', response, mutated: false };
}

export function planAdmission(review: AdmissionReviewRequest, limits: PlanLimits = { maxImports: MAX_IMPORTS_PER_POD }): AdmissionPlan {
  const req = review.request;
  // Only pod creations are ours; anything else the configuration might send goes through untouched.
  if (!isPodKind(req.kind) || req.operation !== 'CREATE' || (req.subResource ?? '') !== '') return answer(allow(req.uid));
  if (req.object === undefined || req.object === null) throw new BadReview('request.object: expected the Pod being created, got missing');
  const decoded = check(Pod, req.object);
  if (!decoded.ok) throw new BadReview(`request.object is not a valid Pod: ${joinProblems(decoded.problems)}`);
  const pod = decoded.value;
  const annotation = importAnnotation(pod);
  if (annotation === undefined) return answer(allow(req.uid));
  const namespace = req.namespace || pod.metadata?.namespace || '';
  const entries = annotationEntries(annotation, limits.maxImports);
  if (entries.length > limits.maxImports) {
    const message = `annotation ${IMPORT_ANNOTATION} of ${describePod(pod)} names more than ${limits.maxImports} service account imports (${countEntries(annotation)} comma-separated entries); a pod may name at most ${limits.maxImports}`;
    return answer(deny(req.uid, message, 400));
  }
  const { names, invalid } = validateEntries(entries);
  if (invalid.length > 0) {
    const list = joinProblems(invalid.map((i) => `${JSON.stringify(clipMessage(i.entry, 80))} is not a valid import name (${i.reason})`));
    return answer(deny(req.uid, `annotation ${IMPORT_ANNOTATION} of ${describePod(pod)}: ${list}`, 400));
  }
  if (names.length === 0) return answer(allow(req.uid));
  const containers = pod.spec.containers.length + (pod.spec.initContainers?.length ?? 0);
  if (containers > MAX_CONTAINERS)
    return answer(deny(req.uid, `${describePod(pod)} has ${containers} containers and init containers; the webhook mounts imports into at most ${MAX_CONTAINERS}`, 400));
  if (namespace === '') return answer(deny(req.uid, `${describePod(pod)} has no namespace: cannot look up service account imports`, 400));
  return { kind: 'lookup', uid: req.uid, namespace, pod, names };
}

/**
 * The second half: given what the lookups found, the response (with a JSON Patch when mutated).
 * `unchecked`: names not looked up because an import was already found missing (the denial says so).
 */
export function completeAdmission(
  plan: Extract<AdmissionPlan, { kind: 'lookup' }>,
  found: ImportFound[],
  unchecked = 0,
): { response: AdmissionResponse; mutated: boolean } {
  const result = mountPatch(plan.pod, plan.namespace, found);
  if (unchecked > 0 && result.allowed) throw new Error('imports left unchecked although none was found missing');
  if (!result.allowed) {
    const rest = unchecked > 0 ? ` (${unchecked} more ${unchecked === 1 ? 'import' : 'imports'} not checked)` : '';
    const message = `cannot mount service account imports into ${describePod(plan.pod)} in namespace "${plan.namespace}": ${result.problems.join('; ')}${rest}`;
    return { response: deny(plan.uid, message), mutated: false };
  }
  const { patch, warnings } = result;
  return { response: allow(plan.uid, { patch, warnings }), mutated: patch.length > 0 };
}
