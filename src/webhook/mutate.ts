import { FEDERATED_CONFIGMAP_KEYS, IMPORT_ANNOTATION, SECRET_KEYS } from '../constants.js';
import { configMapNameForImport, dns1123SubdomainError, mountPathForImport, secretNameForImport, volumeNameForImport } from '../naming.js';
import { isFederatedImport, isReady, Reasons, readyCondition, type ServiceAccountImport } from '../api/import.js';
import type { Container, Pod, Volume, VolumeMount } from './admission.js';

/** The import names a pod asks for, and the entries that are not valid names. */
interface ParsedAnnotation {
  names: string[];
  invalid: { entry: string; reason: string }[];
}

/**
 * The distinct non-empty entries of the annotation (split on commas, trimmed), without
 * validating them; with `max`, it stops once it has found `max + 1` (thousands of names are
 * refused without hashing every one).
 */
export function annotationEntries(value: string | undefined, max = Infinity): string[] {
  if (value === undefined) return [];
  const seen = new Set<string>();
  let from = 0;
  while (from <= value.length && seen.size <= max) {
    const comma = value.indexOf(',', from);
    const end = comma === -1 ? value.length : comma;
    const entry = value.slice(from, end).trim();
    if (entry !== '') seen.add(entry);
    from = end + 1;
  }
  return [...seen];
}

/** How many comma-separated entries the annotation holds (empty and repeated ones included). */
export function countEntries(value: string): number {
  let n = 1;
  for (let i = value.indexOf(','); i !== -1; i = value.indexOf(',', i + 1)) n++;
  return n;
}

/** Sorts distinct entries into valid import names and invalid ones (with the reason). */
export function validateEntries(entries: string[]): ParsedAnnotation {
  const names: string[] = [];
  const invalid: ParsedAnnotation['invalid'] = [];
  for (const entry of entries) {
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

/** One RFC 6902 operation; the mutation only ever adds. */
interface PatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

/** The outcome of the mutation: a denial with its reasons, or the JSON Patch turning the pod into the mutated one, and warnings. */
type MutationPatch = { allowed: false; problems: string[] } | { allowed: true; patch: PatchOperation[]; warnings: string[]; mounted: string[] };

const MAX_WARNING = 240;

function clip(s: string, max: number): string {
  const oneLine = s.replace(/\s+/g, ' ');
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

/** `<head>(<why the import is not Ready>)<tail>`, the reason clipped so the whole stays near MAX_WARNING. */
function notReadyText(head: string, sai: ServiceAccountImport, tail: string): string {
  const c = readyCondition(sai);
  const why = c ? `${c.reason ?? c.status}${c.message ? `: ${c.message}` : ''}` : 'not reconciled yet';
  return `${head}(${clip(why, Math.max(20, MAX_WARNING - head.length - tail.length - 2))})${tail}`;
}

function notReadyWarning(name: string, namespace: string, sai: ServiceAccountImport): string {
  return notReadyText(`service account import "${name}" in namespace "${namespace}" is not Ready `, sai, `; the pod's containers will wait for Secret "${partsFor(name).holds.secretName!}"`);
}

/** The projected token of a federated import: the source's audience and the import's lifetime (from its status). */
interface ProjectedToken {
  audience: string;
  expirationSeconds: number;
}

/**
 * What one import adds to a pod: its volume (the Secret's, or for a federated import a projected
 * volume of its ConfigMap and the pod's own token) and the mount of it.
 */
interface ImportParts {
  volumeName: string;
  /** The Secret (token import) or ConfigMap (federated import) the volume holds. */
  holds: VolumeHolds;
  mountPath: string;
  token?: ProjectedToken;
}

/** What a volume holds, as far as telling an import's own volume from another goes. */
type VolumeHolds = { secretName?: string; configMapName?: string };

/** The files of a federated import's ConfigMap that are mounted beside the token (all but `audience`). */
const FEDERATED_ITEMS = [FEDERATED_CONFIGMAP_KEYS.caCrt, FEDERATED_CONFIGMAP_KEYS.server, FEDERATED_CONFIGMAP_KEYS.namespace, FEDERATED_CONFIGMAP_KEYS.config].map((key) => ({ key, path: key }));

/** A federated import's volume: its ConfigMap's files and the pod's own ServiceAccount token, projected together (ADR 0022). */
function projectedVolume(volumeName: string, configMapName: string, token: ProjectedToken): Volume {
  return {
    name: volumeName,
    projected: {
      sources: [
        { configMap: { name: configMapName, items: FEDERATED_ITEMS } },
        { serviceAccountToken: { path: SECRET_KEYS.token, audience: token.audience, expirationSeconds: token.expirationSeconds } },
      ],
    },
  };
}

const objectOf = {
  volume: (p: ImportParts): Volume =>
    p.token && p.holds.configMapName ? projectedVolume(p.volumeName, p.holds.configMapName, p.token) : { name: p.volumeName, secret: { secretName: p.holds.secretName! } },
  mount: (p: ImportParts): VolumeMount => ({ name: p.volumeName, mountPath: p.mountPath, readOnly: true }),
};

/**
 * Name derivations hash the import name (SHA-256, twice per import); pods name the same few
 * imports over and over. Kept for SPEC §12's throughput target: without it the benchmark pod's
 * mutation costs 12–17 µs instead of 5–7 µs per request, 5–8 % of the webhook's CPU.
 */
const derived = new Map<string, ImportParts>();
function partsFor(importName: string, token?: ProjectedToken): ImportParts {
  const cacheKey = token ? `${importName}\n${token.audience}\n${token.expirationSeconds}` : importName;
  let p = derived.get(cacheKey);
  if (!p) {
    if (derived.size >= 4096) derived.clear();
    const holds: VolumeHolds = token ? { configMapName: configMapNameForImport(importName) } : { secretName: secretNameForImport(importName) };
    p = { volumeName: volumeNameForImport(importName), holds, mountPath: mountPathForImport(importName), ...(token ? { token } : {}) };
    derived.set(cacheKey, p);
  }
  return p;
}

/** The projected token a federated import's pods get, from its status; undefined when its status does not (yet) say. */
function projectedTokenOf(sai: ServiceAccountImport): ProjectedToken | undefined {
  const s = sai.status;
  const ready = readyCondition(sai);
  if (ready?.status !== 'True' || ready.reason !== Reasons.Federated || !s?.audience || s.expirationSeconds === undefined) return undefined;
  return { audience: s.audience, expirationSeconds: s.expirationSeconds };
}

/** Why a federated import cannot be mounted yet (its status lacks the audience it was made Ready with). */
function federatedNotReadyProblem(name: string, namespace: string, sai: ServiceAccountImport): string {
  return notReadyText(`federated service account import "${name}" in namespace "${namespace}" is not Ready `, sai, '; its token audience is not known yet');
}

function normalisePath(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') : p;
}

// The helpers below are plain module functions, not closures: the admission path runs them per
// request, and a closure per call is an allocation (and, under tsx, a __name call) per request.

/** What a pod's volume holds: its Secret, or the ConfigMap of its projected sources (`{}` for a volume of another kind). */
function holdsOf(v: Volume): VolumeHolds {
  if (v.secret) return { secretName: v.secret.secretName };
  const cm = v.projected?.sources?.find((s) => s.configMap)?.configMap;
  return cm ? { configMapName: cm.name } : {};
}

/**
 * The volume called `volumeName`, among the pod's and then those added so far, as what it holds;
 * undefined when there is none.
 */
function volumeHolder(volumes: readonly Volume[] | undefined, added: readonly ImportParts[], volumeName: string): VolumeHolds | undefined {
  if (volumes) for (const v of volumes) if (v.name === volumeName) return holdsOf(v);
  for (const p of added) if (p.volumeName === volumeName) return p.holds;
  return undefined;
}

/** The name of the volume `c` mounts at `mountPath`, counting the mounts added so far. */
function volumeMountedAt(c: Container, added: readonly ImportParts[], mountPath: string): string | undefined {
  if (c.volumeMounts) for (const m of c.volumeMounts) if (normalisePath(m.mountPath) === mountPath) return m.name;
  for (const p of added) if (normalisePath(p.mountPath) === mountPath) return p.volumeName;
  return undefined;
}

/** What mounting adds to a pod: volumes appended to `spec.volumes`, mounts appended per container. */
interface Additions {
  volumes: ImportParts[];
  containers: ImportParts[][];
  initContainers: ImportParts[][] | undefined;
}

type Planned = { allowed: false; problems: string[] } | { allowed: true; additions: Additions; warnings: string[]; mounted: string[] };

/** Mounts import `name` (its `parts`) into each of `containers` (or records why it cannot be). */
function mountInto(containers: readonly Container[], added: ImportParts[][], kind: string, name: string, parts: ImportParts, problems: string[]): void {
  for (let i = 0; i < containers.length; i++) {
    const c = containers[i]!;
    const atPath = volumeMountedAt(c, added[i]!, parts.mountPath);
    if (atPath === undefined) added[i]!.push(parts);
    else if (atPath !== parts.volumeName)
      problems.push(`${kind} "${c.name}" already mounts volume "${atPath}" at ${parts.mountPath}, where service account import "${name}" is mounted`);
  }
}

function emptyLists(n: number): ImportParts[][] {
  const lists: ImportParts[][] = [];
  for (let i = 0; i < n; i++) lists.push([]);
  return lists;
}

/**
 * The mutation's rules: each import's volume (its Secret's, or for a federated import the
 * projected volume of its ConfigMap and the pod's own token), and a read-only mount of it in every
 * container and init container. Already-present volumes and mounts are kept (idempotent); a volume
 * name or mount path taken by something else is a problem, and so is a missing import or a
 * federated import whose audience is not known yet (a token import not Ready is only a warning:
 * its Secret will come).
 */
function planMounts(pod: Pod, namespace: string, found: ImportFound[]): Planned {
  const problems: string[] = [];
  const warnings: string[] = [];
  const tokens = new Map<string, ProjectedToken>();
  for (const f of found) {
    if (!f.import) problems.push(`service account import "${f.name}" not found in namespace "${namespace}"`);
    else if (isFederatedImport(f.import)) {
      const token = projectedTokenOf(f.import);
      if (token) tokens.set(f.name, token);
      else problems.push(federatedNotReadyProblem(f.name, namespace, f.import));
    } else if (!isReady(f.import)) warnings.push(notReadyWarning(f.name, namespace, f.import));
  }
  if (problems.length > 0) return { allowed: false, problems };

  const { spec } = pod;
  const additions: Additions = {
    volumes: [],
    containers: emptyLists(spec.containers.length),
    initContainers: spec.initContainers && emptyLists(spec.initContainers.length),
  };
  const mounted: string[] = [];
  for (const { name } of found) {
    mounted.push(name);
    const parts = partsFor(name, tokens.get(name));
    const holder = volumeHolder(spec.volumes, additions.volumes, parts.volumeName);
    if (!holder) additions.volumes.push(parts);
    else if (holder.secretName !== parts.holds.secretName || holder.configMapName !== parts.holds.configMapName) {
      problems.push(`volume "${parts.volumeName}" already exists and is not the ${parts.token ? 'projected' : 'Secret'} volume of service account import "${name}"`);
      continue;
    }
    if (spec.initContainers && additions.initContainers) mountInto(spec.initContainers, additions.initContainers, 'init container', name, parts, problems);
    mountInto(spec.containers, additions.containers, 'container', name, parts, problems);
  }
  if (problems.length > 0) return { allowed: false, problems };
  return { allowed: true, additions, warnings, mounted };
}

/** The patch's add operations. */
class PatchWriter {
  readonly ops: PatchOperation[] = [];

  /** Appends `added` to the list at `path`: one add per element when it exists (as a diff has it), else the whole list. */
  append(path: string, existing: readonly unknown[] | undefined, added: readonly ImportParts[], what: 'volume' | 'mount'): void {
    if (added.length === 0) return;
    const make = objectOf[what];
    if (existing === undefined) this.ops.push({ op: 'add', path, value: added.map(make) });
    else for (let k = 0; k < added.length; k++) this.ops.push({ op: 'add', path: `${path}/${existing.length + k}`, value: make(added[k]!) });
  }

  /** Last container first, as a whole-pod diff orders them. */
  appendMounts(kind: 'containers' | 'initContainers', containers: readonly Container[], added: ImportParts[][]): void {
    for (let i = containers.length - 1; i >= 0; i--) this.append(`/spec/${kind}/${i}/volumeMounts`, containers[i]!.volumeMounts, added[i]!, 'mount');
  }
}

/**
 * Mounts each import's Secret into every container and init container of `pod` (see planMounts),
 * as RFC 6902 operations written directly from what it adds (no pod copy, no diff). Pure: the pod
 * passed in is not modified. The operations are those of a whole-pod diff, in its order
 * (containers last to first, then init containers, then volumes), which a property test holds
 * against a reference implementation (test/unit/webhook/reference.ts). The plain way — mutate a
 * copy and diff it with fast-json-patch, as the reference does — costs 94–99 µs per request on the
 * benchmark's pod against 5–7 µs: it would nearly double the webhook's CPU per request.
 */
export function mountPatch(pod: Pod, namespace: string, found: ImportFound[]): MutationPatch {
  const planned = planMounts(pod, namespace, found);
  if (!planned.allowed) return planned;
  const { additions, warnings, mounted } = planned;
  const { spec } = pod;
  const w = new PatchWriter();
  w.appendMounts('containers', spec.containers, additions.containers);
  if (spec.initContainers && additions.initContainers) w.appendMounts('initContainers', spec.initContainers, additions.initContainers);
  w.append('/spec/volumes', spec.volumes, additions.volumes, 'volume');
  return { allowed: true, patch: w.ops, warnings, mounted };
}

/** How a pod is named in messages: its name, or its generateName prefix. */
export function describePod(pod: Pod): string {
  const m = pod.metadata;
  if (m?.name) return `pod "${m.name.slice(0, 253)}"`;
  if (m?.generateName) return `pod "${m.generateName.slice(0, 253)}…" (generateName)`;
  return 'pod';
}
