// Reading mounted secret volumes without ever seeing a half-written state. The kubelet writes each
// generation of a volume into a fresh `..<timestamp>` directory and swaps the `..data` symlink to
// it with one rename, so reading every file from the directory `..data` names gives one
// generation (see readVolumeSnapshot for why the listing is complete). A generation deleted under
// us restarts the read.
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDns1123Subdomain } from '../naming.js';
import { ConfigError, errnoCode } from './errors.js';

const DATA_LINK = '..data';
const MAX_ATTEMPTS = 50;

/** One consistent generation of a volume's files. */
interface VolumeSnapshot {
  /** The directory read. */
  dir: string;
  /** The timestamped directory `..data` named, or undefined for a plain directory. */
  generation?: string;
  /** File name → contents, for the regular files of the generation. */
  files: Map<string, Buffer>;
}

const isMissing = (e: unknown) => errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR';

async function readlinkOrUndefined(p: string): Promise<string | undefined> {
  try {
    return await readlink(p);
  } catch (e) {
    if (isMissing(e) || errnoCode(e) === 'EINVAL') return undefined;
    throw e;
  }
}

/** The regular entries of `dir` worth reading (hidden `..` entries skipped), sorted. */
async function listFiles(dir: string, wanted?: ReadonlySet<string>): Promise<string[]> {
  return (await readdir(dir)).filter((e) => !e.startsWith('..') && (!wanted || wanted.has(e))).sort();
}

/** Reads `names` in `dir` in parallel (symlinks followed, non-files skipped). */
async function readFiles(dir: string, names: string[]): Promise<Map<string, Buffer>> {
  const read = await Promise.all(
    names.map(async (name): Promise<[string, Buffer] | undefined> => {
      const p = path.join(dir, name);
      return (await stat(p)).isFile() ? [name, await readFile(p)] : undefined;
    }),
  );
  return new Map(read.filter((r) => r !== undefined));
}

function sameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.get(k)?.equals(v)) return false;
  return true;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Reads one consistent generation of the secret volume at `dir`.
 *
 * With the kubelet's layout: resolve `..data` to a timestamped directory G, list G, and resolve
 * `..data` again. If it still names G, G was current while it was listed, so the listing is
 * complete (the kubelet only deletes generations that are no longer current, and never points
 * `..data` back at an old one). The files of a generation are never modified, only deleted once
 * it is replaced: every file then read in full belongs to G, and one deleted under us (ENOENT)
 * restarts the read. A directory without `..data` (written by hand) is read until two reads agree.
 *
 * Returns undefined when `dir` does not exist or holds nothing yet (a volume being created or
 * removed).
 *
 * @param wanted only these file names are read (all regular files when omitted)
 */
export async function readVolumeSnapshot(dir: string, wanted?: ReadonlySet<string>): Promise<VolumeSnapshot | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await pause(Math.min(attempt, 10) * Math.random() * 2);
    try {
      const generation = await readlinkOrUndefined(path.join(dir, DATA_LINK));
      if (generation === undefined) {
        const first = await readFiles(dir, await listFiles(dir, wanted));
        if (first.size === 0) return undefined;
        const second = await readFiles(dir, await listFiles(dir, wanted));
        if (sameFiles(first, second)) return { dir, files: second };
        continue;
      }
      const generationDir = path.join(dir, generation);
      const names = await listFiles(generationDir, wanted);
      if ((await readlinkOrUndefined(path.join(dir, DATA_LINK))) !== generation) continue;
      return { dir, generation, files: await readFiles(generationDir, names) };
    } catch (e) {
      // The generation being read was deleted after a newer swap, or the volume itself went away.
      if (!isMissing(e)) throw new ConfigError('ReadFailed', `cannot read ${dir}: ${errnoCode(e) ?? String(e)}`, { path: dir }, { cause: e });
      if ((await lstatOrUndefined(dir)) === undefined) return undefined;
      if (await isDangling(dir)) return undefined; // `..data` names nothing: being torn down
    }
  }
  throw new ConfigError('ReadFailed', `${dir} kept changing while being read (${MAX_ATTEMPTS} attempts)`, { path: dir });
}

/** True when `..data` stays pointed at a generation that does not exist. */
async function isDangling(dir: string): Promise<boolean> {
  const link = path.join(dir, DATA_LINK);
  const before = await readlinkOrUndefined(link).catch(() => undefined);
  if (before === undefined || (await lstatOrUndefined(path.join(dir, before)).catch(() => 'unknown')) !== undefined) return false;
  return (await readlinkOrUndefined(link).catch(() => undefined)) === before;
}

/**
 * Runs `read` again (a few times, briefly) when it fails with ENOENT. Opening `<dir>/token`
 * resolves `..data` and then `token` inside the generation it names; a swap and the deletion of
 * the old generation between those two steps makes a path that is always valid fail once.
 */
export async function retryWhileMissing<T>(read: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await read();
    } catch (e) {
      if (i >= attempts || !isMissing(e)) throw e;
      await pause(i);
    }
  }
}

async function lstatOrUndefined(p: string) {
  try {
    return await lstat(p);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

/**
 * The names of the imports mounted under `root`: sub-directories whose name is a DNS-1123
 * subdomain (so `..data`, dot-directories and `lost+found` never count) and that hold a
 * `..data` link or a `config` file. Sorted. A missing root means no import; any other read
 * failure is an error (the original silently returned an empty list).
 */
export async function listMountedImports(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (e) {
    if (isMissing(e)) return [];
    throw new ConfigError('ReadFailed', `cannot list mounted imports in ${root}: ${errnoCode(e) ?? String(e)}`, { path: root }, { cause: e });
  }
  const names: string[] = [];
  for (const name of entries.sort()) {
    if (!isDns1123Subdomain(name)) continue;
    const dir = path.join(root, name);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const hasData = (await lstatOrUndefined(path.join(dir, DATA_LINK)).catch(() => undefined)) !== undefined;
    const hasConfig = hasData || (await lstatOrUndefined(path.join(dir, 'config')).catch(() => undefined)) !== undefined;
    if (hasConfig) names.push(name);
  }
  return names;
}
