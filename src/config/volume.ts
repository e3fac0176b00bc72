// Reading mounted secret volumes without ever seeing a half-written state. The kubelet writes each
// generation of a volume into a fresh `..<timestamp>` directory and swaps the `..data` symlink to
// it with one rename, so resolving `..data` once and reading every file from the directory it
// names gives one generation. If the link moved meanwhile (or the old directory was deleted under
// us) the read starts over.
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDns1123Subdomain } from '../naming.js';
import { ConfigError, errnoCode } from './errors.js';

const DATA_LINK = '..data';
const MAX_ATTEMPTS = 20;

/** One consistent generation of a volume's files. */
export interface VolumeSnapshot {
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

/** Reads the regular files directly in `dir` (symlinks followed, hidden `..` entries skipped). */
async function readFlatFiles(dir: string, wanted?: ReadonlySet<string>): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of (await readdir(dir)).sort()) {
    if (entry.startsWith('..') || (wanted && !wanted.has(entry))) continue;
    const p = path.join(dir, entry);
    if (!(await stat(p)).isFile()) continue;
    files.set(entry, await readFile(p));
  }
  return files;
}

function sameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.get(k)?.equals(v)) return false;
  return true;
}

/**
 * Reads one consistent generation of the secret volume at `dir`: the files of the timestamped
 * directory `..data` points to, checked to still be current afterwards. A directory without
 * `..data` (written by hand) is read twice until two reads agree. Returns undefined when `dir`
 * does not exist or holds nothing yet (a volume being created or removed).
 *
 * @param wanted only these file names are read (all regular files when omitted)
 */
export async function readVolumeSnapshot(dir: string, wanted?: ReadonlySet<string>): Promise<VolumeSnapshot | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    try {
      const generation = await readlinkOrUndefined(path.join(dir, DATA_LINK));
      if (generation === undefined) {
        const first = await readFlatFiles(dir, wanted);
        if (first.size === 0) return undefined;
        const second = await readFlatFiles(dir, wanted);
        if (sameFiles(first, second)) return { dir, files: second };
        continue;
      }
      const files = await readFlatFiles(path.join(dir, generation), wanted);
      if ((await readlinkOrUndefined(path.join(dir, DATA_LINK))) === generation) return { dir, generation, files };
    } catch (e) {
      // The generation read was deleted by a newer swap, or the volume itself went away.
      if (!isMissing(e)) throw new ConfigError('ReadFailed', `cannot read ${dir}: ${errnoCode(e) ?? String(e)}`, { path: dir }, { cause: e });
      if ((await lstatOrUndefined(dir)) === undefined) return undefined;
      const link = await readlinkOrUndefined(path.join(dir, DATA_LINK)).catch(() => undefined);
      if (link !== undefined && (await lstatOrUndefined(path.join(dir, link))) === undefined) return undefined; // dangling: being removed
    }
  }
  throw new ConfigError('ReadFailed', `${dir} kept changing while being read (${MAX_ATTEMPTS} attempts)`, { path: dir });
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
