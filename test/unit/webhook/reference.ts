// Reference implementations the tests compare the webhook's hand-optimised code with.
//
// The mutation: admission writes its JSON Patch directly from one plan (src/webhook/mutate.ts);
// mountImports states the same rules the plain way, on a copy of the pod, sharing nothing with it
// but the naming rules, and fast-json-patch diffs the result: mountPatch must be that diff,
// operation for operation.
//
// The answer: AdmissionReviewResponse, the codec of what the API server reads back.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import * as t from 'io-ts';
import { isFederatedImport, isReady, readyCondition, type ServiceAccountImport } from '../../../src/api/import.js';
import { configMapNameForImport, mountPathForImport, secretNameForImport, volumeNameForImport } from '../../../src/naming.js';
import { ADMISSION_API_VERSION, ADMISSION_KIND, AdmissionResponse, type Pod, type Volume } from '../../../src/webhook/admission.js';
import type { ImportFound } from '../../../src/webhook/mutate.js';

/** A denial with its reasons, or the mutated pod; `notReady` names the found imports not Ready (those admission warns about). */
export type ReferenceResult =
  | { allowed: false; problems: string[] }
  | { allowed: true; pod: Pod; notReady: string[]; mounted: string[] };

/** A federated import's token as its status gives it, when it is Ready as federated. */
function federatedToken(sai: ServiceAccountImport): { audience: string; expirationSeconds: number } | undefined {
  const c = readyCondition(sai);
  const s = sai.status;
  return c?.status === 'True' && c.reason === 'Federated' && s?.audience && s.expirationSeconds !== undefined ? { audience: s.audience, expirationSeconds: s.expirationSeconds } : undefined;
}

/** The volume of one import: its Secret's, or a federated import's projected ConfigMap and token. */
function importVolume(name: string, sai: ServiceAccountImport): Volume {
  const volumeName = volumeNameForImport(name);
  const token = federatedToken(sai);
  if (!token) return { name: volumeName, secret: { secretName: secretNameForImport(name) } };
  const items = ['ca.crt', 'server', 'namespace', 'config'].map((key) => ({ key, path: key }));
  return {
    name: volumeName,
    projected: { sources: [{ configMap: { name: configMapNameForImport(name), items } }, { serviceAccountToken: { path: 'token', ...token } }] },
  };
}

/** Whether `volume` is the import's own (the same Secret, or a projection of the same ConfigMap). */
function sameHolder(volume: Volume, wanted: Volume): boolean {
  const cm = (v: Volume) => v.projected?.sources?.find((s) => s.configMap)?.configMap?.name;
  return volume.secret?.secretName === wanted.secret?.secretName && cm(volume) === cm(wanted);
}

/**
 * Mounts each import's volume read-only into every init container and container of a copy of
 * `pod`. A volume or mount already there for the import is kept (idempotent); a volume of that
 * name holding something else, or another volume mounted at the import's path (trailing slashes
 * ignored), is a problem, and so is an import that was not found, or a federated import not Ready.
 */
export function mountImports(pod: Pod, namespace: string, found: ImportFound[]): ReferenceResult {
  const unusable = found.flatMap((f) =>
    !f.import
      ? [`service account import "${f.name}" not found in namespace "${namespace}"`]
      : isFederatedImport(f.import) && !federatedToken(f.import)
        ? [`federated service account import "${f.name}" in namespace "${namespace}" is not Ready`]
        : [],
  );
  if (unusable.length > 0) return { allowed: false, problems: unusable };

  const out = structuredClone(pod);
  const { spec } = out;
  const problems: string[] = [];
  for (const { name, import: sai } of found) {
    const volumeName = volumeNameForImport(name);
    const wanted = importVolume(name, sai!);
    const mountPath = mountPathForImport(name);
    const volume = spec.volumes?.find((v) => v.name === volumeName);
    if (!volume) (spec.volumes ??= []).push(wanted);
    else if (!sameHolder(volume, wanted)) {
      problems.push(`volume "${volumeName}" already exists and is not the ${wanted.projected ? 'projected' : 'Secret'} volume of service account import "${name}"`);
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
  const notReady = found.filter((f) => f.import && !isFederatedImport(f.import) && !isReady(f.import)).map((f) => f.name);
  return { allowed: true, pod: out, notReady, mounted: found.map((f) => f.name) };
}

/** What the webhook answers, as the API server reads it. */
export const AdmissionReviewResponse = t.type({
  apiVersion: t.literal(ADMISSION_API_VERSION),
  kind: t.literal(ADMISSION_KIND),
  response: AdmissionResponse,
});

/** The whole-pod RFC 6902 diff, by fast-json-patch `compare`. */
export function fullPodPatch(before: Pod, after: Pod): Operation[] {
  return fastJsonPatch.compare(before, after);
}

/** `pod` with `patch` applied (to a copy), validating each operation. */
export function applied(pod: Pod, patch: readonly Operation[]): Pod {
  return fastJsonPatch.applyPatch(structuredClone(pod), [...patch], true, false).newDocument;
}
