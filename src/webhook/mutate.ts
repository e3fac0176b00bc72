import fastJsonPatch, { type Operation as PatchOperation } from 'fast-json-patch';
import { IMPORT_ANNOTATION } from '../constants.js';
import { dns1123SubdomainError, mountPathForImport, secretNameForImport, volumeNameForImport } from '../naming.js';
import { isReady, readyCondition, type ServiceAccountImport } from '../api/import.js';
import type { Container, Pod, Volume } from './admission.js';

export type { PatchOperation };

/** The import names a pod asks for, and the entries that are not valid names. */
export interface ParsedAnnotation {
  names: string[];
  invalid: { entry: string; reason: string }[];
}

/** Splits the annotation on commas, trims, drops empty entries, de-duplicates, validates each name. */
export function parseImportAnnotation(value: string | undefined): ParsedAnnotation {
  const names: string[] = [];
  const invalid: ParsedAnnotation['invalid'] = [];
  if (value === undefined) return { names, invalid };
  const seen = new Set<string>();
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '' || seen.has(entry)) continue;
    seen.add(entry);
    const reason = dns1123SubdomainError(entry);
    if (reason) invalid.push({ entry, reason });
    else names.push(entry);
  }
  return { names, invalid };
}

/** The annotation value of a pod, if any. */
export function importAnnotation(pod: Pod): string | undefined {
  return pod.metadata?.annotations?.[IMPORT_ANNOTATION];
}

/** What the lookup found for one import name. */
export type ImportFound = { name: string; import: ServiceAccountImport | undefined };

/** The outcome of the mutation: a denial with its reasons, or the mutated pod and warnings. */
export type MutationResult =
  | { allowed: false; problems: string[] }
  | { allowed: true; pod: Pod; warnings: string[]; mounted: string[] };

const MAX_WARNING = 240;

function clip(s: string, max: number): string {
  const oneLine = s.replace(/\s+/g, ' ');
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

function notReadyWarning(name: string, namespace: string, sai: ServiceAccountImport): string {
  const c = readyCondition(sai);
  const why = c ? `${c.reason ?? c.status}${c.message ? `: ${c.message}` : ''}` : 'not reconciled yet';
  const head = `service account import "${name}" in namespace "${namespace}" is not Ready (`;
  const tail = `); the pod's containers will wait for Secret "${namesFor(name).secretName}"`;
  return head + clip(why, Math.max(20, MAX_WARNING - head.length - tail.length)) + tail;
}

/** Name derivations hash the import name; pods name the same few imports over and over. */
const derived = new Map<string, { volumeName: string; secretName: string; mountPath: string }>();
function namesFor(importName: string) {
  let d = derived.get(importName);
  if (!d) {
    if (derived.size >= 4096) derived.clear();
    d = { volumeName: volumeNameForImport(importName), secretName: secretNameForImport(importName), mountPath: mountPathForImport(importName) };
    derived.set(importName, d);
  }
  return d;
}

function normalisePath(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/**
 * Mounts each import's Secret into every container and init container of `pod`. Pure: the pod
 * passed in is not modified. Already-present volumes and mounts are kept (idempotent); a volume
 * name or mount path taken by something else is a problem, and so is a missing import.
 */
export function mountImports(pod: Pod, namespace: string, found: ImportFound[]): MutationResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const f of found) {
    if (!f.import) problems.push(`service account import "${f.name}" not found in namespace "${namespace}"`);
    else if (!isReady(f.import)) warnings.push(notReadyWarning(f.name, namespace, f.import));
  }
  if (problems.length > 0) return { allowed: false, problems };

  const volumes: Volume[] = [...(pod.spec.volumes ?? [])];
  const containers = pod.spec.containers.map((c) => ({ ...c, volumeMounts: c.volumeMounts ? [...c.volumeMounts] : undefined }));
  const initContainers = pod.spec.initContainers?.map((c) => ({ ...c, volumeMounts: c.volumeMounts ? [...c.volumeMounts] : undefined }));

  for (const { name } of found) {
    const { volumeName, secretName, mountPath } = namesFor(name);
    const existing = volumes.find((v) => v.name === volumeName);
    if (existing) {
      if (existing.secret?.secretName !== secretName) {
        problems.push(`volume "${volumeName}" already exists and is not the Secret volume of service account import "${name}"`);
        continue;
      }
    } else {
      volumes.push({ name: volumeName, secret: { secretName } });
    }
    const mountInto = (c: Container & { volumeMounts: Container['volumeMounts'] }, kind: string) => {
      const atPath = (c.volumeMounts ?? []).find((m) => normalisePath(m.mountPath) === mountPath);
      if (atPath) {
        if (atPath.name !== volumeName)
          problems.push(`${kind} "${c.name}" already mounts volume "${atPath.name}" at ${mountPath}, where service account import "${name}" is mounted`);
        return;
      }
      c.volumeMounts = [...(c.volumeMounts ?? []), { name: volumeName, mountPath, readOnly: true }];
    };
    for (const c of initContainers ?? []) mountInto(c, 'init container');
    for (const c of containers) mountInto(c, 'container');
  }
  if (problems.length > 0) return { allowed: false, problems };

  const strip = <C extends { volumeMounts?: unknown }>(c: C): C => {
    if (c.volumeMounts === undefined) {
      const { volumeMounts: _drop, ...rest } = c;
      return rest as C;
    }
    return c;
  };
  const spec = { ...pod.spec, containers: containers.map(strip) };
  if (initContainers) spec.initContainers = initContainers.map(strip);
  if (volumes.length > 0) spec.volumes = volumes;
  return { allowed: true, pod: { ...pod, spec }, warnings, mounted: found.map((f) => f.name) };
}

/**
 * The RFC 6902 operations turning `before` into `after`, by fast-json-patch `compare`. The
 * mutation only ever replaces `spec.volumes` and containers' `volumeMounts` (everything else is
 * shared by reference), so only those subtrees are diffed, with their paths prefixed: the result is
 * the whole-pod diff (a unit test holds the two equal) without walking metadata, env or probes.
 */
export function podPatch(before: Pod, after: Pod): PatchOperation[] {
  const ops: PatchOperation[] = [];
  const diff = (path: string, a: unknown, b: unknown) => {
    if (a === b) return;
    // The values are fresh objects, serialised right away and never mutated: no clone needed.
    if (a === undefined) {
      ops.push({ op: 'add', path, value: b });
      return;
    }
    // The usual change, a list with elements appended, is what compare() would emit: one add per
    // new index, in order.
    if (Array.isArray(a) && Array.isArray(b) && b.length > a.length && a.every((x, i) => x === b[i])) {
      for (let i = a.length; i < b.length; i++) ops.push({ op: 'add', path: `${path}/${i}`, value: b[i] as unknown });
      return;
    }
    for (const op of fastJsonPatch.compare({ v: a }, { v: b })) ops.push({ ...op, path: path + op.path.slice(2) });
  };
  const containers = (kind: 'containers' | 'initContainers') => {
    const a = before.spec[kind];
    const b = after.spec[kind];
    if (a === b) return;
    if (!a || !b || a.length !== b.length || a.some((c, i) => c.name !== b[i]!.name)) {
      diff(`/spec/${kind}`, a, b); // not a mount-only change: diff the lists
      return;
    }
    // Last to first, as compare() orders a whole-pod diff.
    for (let i = a.length - 1; i >= 0; i--) {
      const c = a[i]!;
      const next = b[i]!;
      if (c === next) continue;
      const { volumeMounts: ma, ...restA } = c;
      const { volumeMounts: mb, ...restB } = next;
      const same = Object.keys(restA).length === Object.keys(restB).length && Object.entries(restA).every(([k, v]) => (restB as Record<string, unknown>)[k] === v);
      if (same) diff(`/spec/${kind}/${i}/volumeMounts`, ma, mb);
      else diff(`/spec/${kind}/${i}`, c, next);
    }
  };
  if (before.spec !== after.spec) {
    const { containers: _c, initContainers: _i, volumes: _v, ...restBefore } = before.spec;
    const { containers: _c2, initContainers: _i2, volumes: _v2, ...restAfter } = after.spec;
    for (const k of new Set([...Object.keys(restBefore), ...Object.keys(restAfter)]))
      diff(`/spec/${k}`, (restBefore as Record<string, unknown>)[k], (restAfter as Record<string, unknown>)[k]);
    containers('containers');
    if (before.spec.initContainers !== undefined || after.spec.initContainers !== undefined) containers('initContainers');
    diff('/spec/volumes', before.spec.volumes, after.spec.volumes);
  }
  return ops;
}

/** The whole-pod diff (reference for tests and for callers that change more than mounts). */
export function fullPodPatch(before: Pod, after: Pod): PatchOperation[] {
  return fastJsonPatch.compare(before, after);
}

/** How a pod is named in messages: its name, or its generateName prefix. */
export function describePod(pod: Pod): string {
  const m = pod.metadata;
  if (m?.name) return `pod "${m.name}"`;
  if (m?.generateName) return `pod "${m.generateName}…" (generateName)`;
  return 'pod';
}
