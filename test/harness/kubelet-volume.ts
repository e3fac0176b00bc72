// Materialises a Secret's data on disk exactly the way the kubelet's AtomicWriter lays out a
// secret volume (pkg/volume/util/atomic_writer.go), so code that reads mounted files can be
// tested against real directories:
//
//   <dir>/..2026_11_28_13_45_12.123456789/<key>   the files of one generation
//   <dir>/..data -> ..2026_11_28_13_45_12.123456789
//   <dir>/<key>  -> ..data/<key>
//
// An update writes a new timestamped directory, points a `..data_tmp` symlink at it, renames that
// over `..data` (the atomic step), adds symlinks for new keys, removes those of dropped keys and
// finally deletes the previous timestamped directory.
import { randomInt } from 'node:crypto';
import { lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The contents of a secret volume: key → file contents (strings are written as UTF-8). */
export type SecretVolumeData = Record<string, string | Buffer>;

const DATA_LINK = '..data';
const DATA_TMP_LINK = '..data_tmp';

function assertValidKey(key: string): void {
  if (key === '' || key.includes('/') || key.startsWith('..') || key === '.') {
    throw new Error(`invalid secret volume key ${JSON.stringify(key)}: keys are plain file names not starting with '..'`);
  }
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `..YYYY_MM_DD_HH_MM_SS.<9 digits>`, the kubelet's timestamped directory name (UTC). */
function timestampDirName(now = new Date()): string {
  const stamp = `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}`;
  return `..${stamp}.${pad(randomInt(1_000_000_000), 9)}`;
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Creates a fresh timestamped directory in `dir` holding `data`; returns its name. */
async function writeGeneration(dir: string, data: SecretVolumeData): Promise<string> {
  for (;;) {
    const name = timestampDirName();
    try {
      await mkdir(path.join(dir, name), { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    await Promise.all(Object.entries(data).map(([key, value]) => writeFile(path.join(dir, name, key), value, { mode: 0o644 })));
    return name;
  }
}

async function currentGeneration(dir: string): Promise<string | undefined> {
  try {
    return await readlink(path.join(dir, DATA_LINK));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Lays the volume out in `dir` (which must exist) the way AtomicWriter.Write does. */
async function atomicWrite(dir: string, data: SecretVolumeData): Promise<void> {
  const previous = await currentGeneration(dir);
  const generation = await writeGeneration(dir, data);
  const tmpLink = path.join(dir, DATA_TMP_LINK);
  await rm(tmpLink, { force: true });
  await symlink(generation, tmpLink);
  await rename(tmpLink, path.join(dir, DATA_LINK));
  for (const key of Object.keys(data)) {
    const link = path.join(dir, key);
    if (!(await exists(link))) await symlink(path.join(DATA_LINK, key), link);
  }
  for (const entry of await readdir(dir)) {
    if (entry.startsWith('..') || Object.hasOwn(data, entry)) continue;
    await unlink(path.join(dir, entry));
  }
  if (previous !== undefined && previous !== generation) await rm(path.join(dir, previous), { recursive: true, force: true });
}

/**
 * Writes `data` as a secret volume at `dir`, the way the kubelet does.
 *
 * - `dir` missing: the volume is built in a hidden sibling directory and renamed into place, so it
 *   appears all at once (as a mount does in a container).
 * - `dir` present: an atomic update (new timestamped directory, `..data` swapped by rename, stale
 *   key links and the previous generation removed). Readers that resolve `..data` once see either
 *   the old or the new generation in full, never a mix.
 */
export async function writeSecretVolume(dir: string, data: SecretVolumeData): Promise<void> {
  for (const key of Object.keys(data)) assertValidKey(key);
  if (await exists(dir)) {
    await atomicWrite(dir, data);
    return;
  }
  const staging = path.join(path.dirname(dir), `.${path.basename(dir)}.staging-${randomInt(1e9)}`);
  await mkdir(staging, { recursive: true, mode: 0o755 });
  try {
    await atomicWrite(staging, data);
    await rename(staging, dir);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Removes the secret volume at `dir` as an unmount would: the directory disappears at once
 * (renamed to a hidden sibling), then its contents are deleted. A missing `dir` is not an error.
 */
export async function removeSecretVolume(dir: string): Promise<void> {
  if (!(await exists(dir))) return;
  const doomed = path.join(path.dirname(dir), `.${path.basename(dir)}.removing-${randomInt(1e9)}`);
  await rename(dir, doomed);
  await rm(doomed, { recursive: true, force: true });
}
