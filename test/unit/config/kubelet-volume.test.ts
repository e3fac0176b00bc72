// The kubelet-volume helper lays a Secret out as the kubelet's AtomicWriter does.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { removeSecretVolume, writeSecretVolume } from '../../harness/kubelet-volume.js';
import { tempDir } from './fixtures.js';

let parent: string;
let remove: () => Promise<void>;
beforeEach(async () => ({ dir: parent, remove } = await tempDir('volume')));
afterEach(() => remove());

const TIMESTAMPED = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{9}$/;

describe('writeSecretVolume', () => {
  it('writes a timestamped directory, ..data and one symlink per key', async () => {
    const dir = path.join(parent, 'vol');
    await writeSecretVolume(dir, { token: 't1', 'ca.crt': Buffer.from('ca') });
    const entries = (await readdir(dir)).sort();
    const generation = entries.find((e) => TIMESTAMPED.test(e));
    expect(generation).toBeDefined();
    expect(entries).toEqual([generation, '..data', 'ca.crt', 'token'].sort());
    expect(await readlink(path.join(dir, '..data'))).toBe(generation);
    expect(await readlink(path.join(dir, 'token'))).toBe('..data/token');
    expect(await readFile(path.join(dir, 'token'), 'utf8')).toBe('t1');
    expect((await readdir(parent)).sort()).toEqual(['vol']); // no staging directory left behind
  });

  it('updates atomically: new generation, swapped link, stale keys and the old generation removed', async () => {
    const dir = path.join(parent, 'vol');
    await writeSecretVolume(dir, { token: 't1', old: 'x' });
    const first = await readlink(path.join(dir, '..data'));
    await writeSecretVolume(dir, { token: 't2', added: 'y' });
    const second = await readlink(path.join(dir, '..data'));
    expect(second).not.toBe(first);
    expect(TIMESTAMPED.test(second)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([second, '..data', 'added', 'token'].sort());
    expect(await readFile(path.join(dir, 'token'), 'utf8')).toBe('t2');
    expect(await readFile(path.join(dir, 'added'), 'utf8')).toBe('y');
    expect((await lstat(path.join(dir, 'token'))).isSymbolicLink()).toBe(true);
  });

  it('rejects keys that would escape or collide with the layout', async () => {
    await expect(writeSecretVolume(path.join(parent, 'v'), { '../x': 'a' })).rejects.toThrow('invalid secret volume key');
    await expect(writeSecretVolume(path.join(parent, 'v'), { '..data': 'a' })).rejects.toThrow('invalid secret volume key');
  });
});

describe('removeSecretVolume', () => {
  it('removes the whole volume and tolerates a missing one', async () => {
    const dir = path.join(parent, 'vol');
    await writeSecretVolume(dir, { token: 't' });
    await writeFile(path.join(parent, 'keep'), 'k');
    await removeSecretVolume(dir);
    expect(await readdir(parent)).toEqual(['keep']);
    await expect(removeSecretVolume(dir)).resolves.toBeUndefined();
  });
});
