// The observable loaders on real directories: emission at subscription, within 1 s of a kubelet
// `..data` swap, on imports appearing and disappearing, never a mixed generation, no duplicates,
// and nothing left running after unsubscribe.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  allNamedConfigsAndNamespaces$,
  allServiceAccountImportConfigsAndNamespaces$,
  configAndNamespace$,
  MOUNT_ROOT_ENV,
  namedConfigAndNamespace$,
  namedServiceAccountImportConfigAndNamespace$,
  serviceAccountImportConfigAndNamespace$,
  type ConfigAndNamespace,
} from '../../../src/config/index.js';
import { loaderEnvironment } from '../../../src/config/environment.js';
import { loadImport } from '../../../src/config/loaders.js';
import { readVolumeSnapshot } from '../../../src/config/volume.js';
import { mountRootDirectories, watchLoaded } from '../../../src/config/watch.js';
import { waitFor } from '../../harness/https.js';
import { removeSecretVolume, writeSecretVolume } from '../../harness/kubelet-volume.js';
import { authorization, gen, importData, isolatedConfigEnv, kubeconfigYaml, mountImport, record, timed, writeKubeconfig } from './fixtures.js';

let root: string;
let home: string;
let cleanup: (() => Promise<void> | void)[] = [];
let restore: () => Promise<void>;
/** Slow enough that every reaction measured below comes from fs.watch, not the safety-net poll. */
const NO_POLL = { pollIntervalMs: 60_000 };

beforeEach(async () => {
  ({ root, home, cleanup, restore } = await isolatedConfigEnv('obs-', MOUNT_ROOT_ENV));
});

afterEach(() => restore());

function track<T>(source: import('rxjs').Observable<T>) {
  const r = record(source);
  cleanup.push(r.stop);
  return r;
}

describe('namedServiceAccountImportConfigAndNamespace$', () => {
  it('emits at subscription and within 1 s of each ..data swap', async () => {
    await mountImport(root, 'c', 1);
    const r = track(namedServiceAccountImportConfigAndNamespace$('c', NO_POLL));
    await r.waitFor((v) => gen(v) === 1, 1000);
    for (const g of [2, 3, 4]) {
      await mountImport(root, 'c', g);
      const { ms } = await timed(r.waitFor((v) => gen(v) === g, 1000, `generation ${g}`));
      expect(ms).toBeLessThan(1000);
    }
    expect(r.values.map(gen)).toEqual([1, 2, 3, 4]);
    expect(await authorization(r.values[3]!.kubeConfig)).toBe('Bearer token-c-4');
  });

  it('keeps following an import directory removed and mounted again', async () => {
    await mountImport(root, 'c', 1);
    const r = track(namedServiceAccountImportConfigAndNamespace$('c', NO_POLL));
    await r.waitFor((v) => gen(v) === 1);
    // A new directory (new inode) at the same path: built aside, then moved into place.
    const staged = path.join(root, '.staged');
    await writeSecretVolume(staged, importData('c', 5));
    await rename(path.join(root, 'c'), path.join(root, '.old'));
    await rename(staged, path.join(root, 'c'));
    await removeSecretVolume(path.join(root, '.old'));
    await r.waitFor((v) => gen(v) === 5, 1000, 'generation 5');
    await mountImport(root, 'c', 6); // a swap inside the new directory must be seen too
    await r.waitFor((v) => gen(v) === 6, 1000, 'generation 6');
  });

  it('errors at once when the import is not mounted or the name is invalid', async () => {
    const missing = track(namedServiceAccountImportConfigAndNamespace$('nope', NO_POLL));
    expect(await missing.waitForError()).toMatchObject({ code: 'NotMounted' });
    const invalid = track(namedServiceAccountImportConfigAndNamespace$('../etc', NO_POLL));
    expect(await invalid.waitForError()).toMatchObject({ code: 'InvalidName' });
  });

  it('errors with NotMounted when the import goes away', async () => {
    await mountImport(root, 'c', 1);
    const r = track(namedServiceAccountImportConfigAndNamespace$('c', NO_POLL));
    await r.waitFor(() => true);
    await removeSecretVolume(path.join(root, 'c'));
    expect(await r.waitForError()).toMatchObject({ code: 'NotMounted', details: { name: 'c' } });
  });
});

describe('imports appearing and disappearing', () => {
  it('allServiceAccountImportConfigsAndNamespaces$ follows the set of mounted imports', async () => {
    const r = track(allServiceAccountImportConfigsAndNamespaces$(NO_POLL));
    const keys = (m: Map<string, ConfigAndNamespace>) => [...m.keys()].join(',');
    await r.waitFor((m) => m.size === 0);
    await mountImport(root, 'a');
    await r.waitFor((m) => keys(m) === 'a', 1000, '{a}');
    await mountImport(root, 'b');
    await r.waitFor((m) => keys(m) === 'a,b', 1000, '{a,b}');
    await removeSecretVolume(path.join(root, 'a'));
    await r.waitFor((m) => keys(m) === 'b', 1000, '{b}');
    expect(r.values.map(keys)).toEqual(['', 'a', 'a,b', 'b']);
    expect(r.errored).toBe(false);
  });

  it('also notices a mount root that appears later (poll safety net)', async () => {
    const late = path.join(root, 'late-root');
    const r = track(allServiceAccountImportConfigsAndNamespaces$({ mountRoot: late, pollIntervalMs: 100 }));
    await r.waitFor((m) => m.size === 0);
    await mountImport(late, 'x'); // mkdir -p of the root happens inside the helper
    await r.waitFor((m) => m.has('x'), 2000, '{x}');
  });

  it('serviceAccountImportConfigAndNamespace$ errors when a second import is mounted', async () => {
    await mountImport(root, 'a');
    const r = track(serviceAccountImportConfigAndNamespace$(NO_POLL));
    await r.waitFor(() => true);
    await mountImport(root, 'b');
    expect(await r.waitForError()).toMatchObject({ code: 'SeveralImportsMounted', details: { count: 2, names: ['a', 'b'] } });
  });

  it('configAndNamespace$ moves from the kubeconfig to an import when one is mounted', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'dev' }], 'dev'));
    const r = track(configAndNamespace$(NO_POLL));
    await r.waitFor((v) => v.source.kind === 'kubeconfig');
    await mountImport(root, 'imp', 2);
    await r.waitFor((v) => v.source.kind === 'import', 1000, 'the import');
  });

  it('namedConfigAndNamespace$ moves from the context of that name to the import of that name when it is mounted', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'shared' }], 'shared'));
    const r = track(namedConfigAndNamespace$('shared', NO_POLL));
    await r.waitFor((v) => v.source.kind === 'kubeconfig');
    await mountImport(root, 'shared', 2);
    await r.waitFor((v) => v.source.kind === 'import' && gen(v) === 2, 1000, 'the import');
  });

  it('allNamedConfigsAndNamespaces$ follows the kubeconfig file (atomic replace) and the imports', async () => {
    const file = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'one' }], 'one'));
    process.env.KUBECONFIG = file;
    const r = track(allNamedConfigsAndNamespaces$(NO_POLL));
    await r.waitFor((m) => m.has('one'));
    await writeFile(`${file}.tmp`, kubeconfigYaml([{ name: 'one' }, { name: 'two' }], 'one'));
    await rename(`${file}.tmp`, file);
    await r.waitFor((m) => m.has('two'), 1000, 'context two');
    await mountImport(root, 'imp');
    await r.waitFor((m) => m.has('imp') && m.has('two'), 1000, 'import imp');
  });
});

describe('watchLoaded', () => {
  it('does not emit when nothing changed, and stops loading after unsubscribe', async () => {
    await mountImport(root, 'c', 1);
    const env = loaderEnvironment();
    let loads = 0;
    const source = watchLoaded(
      () => {
        loads++;
        return loadImport(env, 'c');
      },
      () => mountRootDirectories(root),
      NO_POLL,
    );
    const r = record(source);
    await r.waitFor(() => true);
    // Same contents through a real swap, plus unrelated entries: reloads, but no emission.
    const before = loads;
    await mountImport(root, 'c', 1);
    await writeFile(path.join(root, 'unrelated-file'), 'x');
    await waitFor('reloads after the identical swap', () => loads >= before + 1, 2000, 10);
    await mountImport(root, 'c', 1);
    await waitFor('reloads after the second identical swap', () => loads >= before + 2, 2000, 10);
    expect(r.values).toHaveLength(1);
    await mountImport(root, 'c', 2);
    await r.waitFor((v) => gen(v) === 2, 1000);
    expect(r.values.map(gen)).toEqual([1, 2]);
    r.stop();
    const after = loads;
    await mountImport(root, 'c', 3);
    // Give a live watcher every chance to fire: wait for a fresh reader to see generation 3 first.
    await waitFor('generation 3 on disk', async () => (await readVolumeSnapshot(path.join(root, 'c')))?.files.get('token')?.toString() === 'token-c-3', 2000);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(loads).toBe(after);
  });
});
