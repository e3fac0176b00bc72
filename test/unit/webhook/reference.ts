// Reference implementations the tests compare the webhook's hand-optimised code with.
//
// The mutation: admission writes its JSON Patch directly from one plan (src/webhook/mutate.ts);
// mountImports states the same rules the plain way, on a copy of the pod, sharing nothing with it
// but the naming rules, and fast-json-patch diffs the result: mountPatch must be that diff,
// operation for operation.
//
// The answer: serializeReview (src/webhook/admission.ts) writes an AdmissionReview's bytes itself;
// they must be JSON.stringify's of reviewResponse, and decode as AdmissionReviewResponse.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import * as t from 'io-ts';
import { isReady } from '../../../src/api/import.js';
import { mountPathForImport, secretNameForImport, volumeNameForImport } from '../../../src/naming.js';
import { ADMISSION_API_VERSION, ADMISSION_KIND, AdmissionResponse, type Pod } from '../../../src/webhook/admission.js';
import type { ImportFound } from '../../../src/webhook/mutate.js';

/** A denial with its reasons, or the mutated pod; `notReady` names the found imports not Ready (those admission warns about). */
export type ReferenceResult =
  | { allowed: false; problems: string[] }
  | { allowed: true; pod: Pod; notReady: string[]; mounted: string[] };

/**
 * Mounts each import's Secret volume read-only into every init container and container of a copy
 * of `pod`. A volume or mount already there for the import is kept (idempotent); a volume of that
 * name holding something else, or another volume mounted at the import's path (trailing slashes
 * ignored), is a problem, and so is an import that was not found.
 */
export function mountImports(pod: Pod, namespace: string, found: ImportFound[]): ReferenceResult {
  const missing = found.filter((f) => !f.import).map((f) => `service account import "${f.name}" not found in namespace "${namespace}"`);
  if (missing.length > 0) return { allowed: false, problems: missing };

  const out = structuredClone(pod);
  const { spec } = out;
  const problems: string[] = [];
  for (const { name } of found) {
    const volumeName = volumeNameForImport(name);
    const secretName = secretNameForImport(name);
    const mountPath = mountPathForImport(name);
    const volume = spec.volumes?.find((v) => v.name === volumeName);
    if (!volume) (spec.volumes ??= []).push({ name: volumeName, secret: { secretName } });
    else if (volume.secret?.secretName !== secretName) {
      problems.push(`volume "${volumeName}" already exists and is not the Secret volume of service account import "${name}"`);
      continue;
    }
    const lists = [['init container', spec.initContainers ?? []] as const, ['container', spec.containers] as const];
    for (const [kind, containers] of lists) {
      for (const c of containers) {
        const taken = c.volumeMounts?.find((m) => m.mountPath.replace(/\/+$/, '') === mountPath);
        if (!taken) (c.volumeMounts ??= []).push({ name: volumeName, mountPath, readOnly: true });
        else if (taken.name !== volumeName)
          problems.push(`${kind} "${c.name}" already mounts volume "${taken.name}" at ${mountPath}, where service account import "${name}" is mounted`);
      }
    }
  }
  if (problems.length > 0) return { allowed: false, problems };
  const notReady = found.filter((f) => f.import && !isReady(f.import)).map((f) => f.name);
  return { allowed: true, pod: out, notReady, mounted: found.map((f) => f.name) };
}

/** What the webhook answers, as the API server reads it. */
export const AdmissionReviewResponse = t.type({
  apiVersion: t.literal(ADMISSION_API_VERSION),
  kind: t.literal(ADMISSION_KIND),
  response: AdmissionResponse,
});

/** The AdmissionReview answering with `response`. */
export function reviewResponse(response: AdmissionResponse): t.TypeOf<typeof AdmissionReviewResponse> {
  return { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_KIND, response };
}

/** The whole-pod RFC 6902 diff, by fast-json-patch `compare`. */
export function fullPodPatch(before: Pod, after: Pod): Operation[] {
  return fastJsonPatch.compare(before, after);
}

/** `pod` with `patch` applied (to a copy), validating each operation. */
export function applied(pod: Pod, patch: readonly Operation[]): Pod {
  return fastJsonPatch.applyPatch(structuredClone(pod), [...patch], true, false).newDocument;
}
