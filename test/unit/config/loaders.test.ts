// The promise loaders over real directories laid out by the kubelet-volume helper, with
// MCSA_MOUNT_ROOT, KUBECONFIG and HOME pointing at temporary files.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  allContextsForKubeconfig,
  allNamedConfigsAndNamespaces,
  allServiceAccountImportConfigsAndNamespaces,
  ConfigError,
  configAndNamespace,
  configAndNamespaceForKubeconfigAndContext,
  MOUNT_ROOT_ENV,
  mountedServiceAccountImportNames,
  namedConfigAndNamespace,
  namedServiceAccountImportConfigAndNamespace,
  serviceAccountImportConfigAndNamespace,
  serviceAccountImportMounted,
  singleServiceAccountImportName,
} from '../../../src/config/index.js';
import { loaderEnvironment } from '../../../src/config/environment.js';
import { loadDefault, loadKubeconfigContext } from '../../../src/config/loaders.js';
import { writeSecretVolume } from '../../harness/kubelet-volume.js';
import { authorization, importData, isolatedConfigEnv, kubeconfigYaml, mountImport, serverOf, tempDir, tokenOf, writeKubeconfig } from './fixtures.js';

let root: string;
let home: string;
let cleanup: (() => Promise<void> | void)[] = [];
let restore: () => Promise<void>;

beforeEach(async () => {
  ({ root, home, cleanup, restore } = await isolatedConfigEnv('', MOUNT_ROOT_ENV));
});

afterEach(() => restore());

/** Rejects with a ConfigError of `code` whose message contains every `parts`. */
async function expectConfigError(p: Promise<unknown>, code: string, ...parts: string[]): Promise<ConfigError> {
  const e = await p.then(
    () => {
      throw new Error(`expected a ${code} ConfigError, got a value`);
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ConfigError);
  const ce = e as ConfigError;
  expect(ce.code).toBe(code);
  for (const part of parts) expect(ce.message).toContain(part);
  return ce;
}

describe('namedServiceAccountImportConfigAndNamespace', () => {
  it('loads a mounted import: context, namespace, server, CA, and the mounted token', async () => {
    await mountImport(root, 'cluster2', 3);
    const { kubeConfig, namespace, source } = await namedServiceAccountImportConfigAndNamespace('cluster2');
    expect(namespace).toBe('ns-3');
    expect(source).toEqual({ kind: 'import', name: 'cluster2', path: path.join(root, 'cluster2') });
    expect(kubeConfig.getCurrentContext()).toBe('cluster2');
    expect(kubeConfig.getCurrentCluster()?.server).toBe(serverOf('cluster2', 3));
    expect(Buffer.from(kubeConfig.getCurrentCluster()?.caData ?? '', 'base64').toString()).toContain('R0VO3');
    expect(await authorization(kubeConfig)).toBe(`Bearer ${tokenOf('cluster2', 3)}`);
  });

  it('remaps the tokenFile under the default mount root to the overridden root', async () => {
    await mountImport(root, 'cluster2');
    const { kubeConfig } = await namedServiceAccountImportConfigAndNamespace('cluster2');
    const provider = kubeConfig.getCurrentUser()?.authProvider as { config: { path: string } };
    expect(provider.config.path).toBe(path.join(root, 'cluster2', 'token'));
  });

  it('leaves a tokenFile outside the default mount root alone', async () => {
    const other = await tempDir('elsewhere');
    cleanup.push(other.remove);
    await writeFile(path.join(other.dir, 'tok'), 'elsewhere-token\n');
    const data = importData('c', 1);
    data.config = data.config.replace(/tokenFile: .*/, `tokenFile: ${path.join(other.dir, 'tok')}`);
    await writeSecretVolume(path.join(root, 'c'), data);
    const { kubeConfig } = await namedServiceAccountImportConfigAndNamespace('c');
    expect(await authorization(kubeConfig)).toBe('Bearer elsewhere-token');
  });

  it('keeps working across token rotations: the token is re-read after a ..data swap', async () => {
    await mountImport(root, 'cluster2', 1);
    const { kubeConfig } = await namedServiceAccountImportConfigAndNamespace('cluster2');
    expect(await authorization(kubeConfig)).toBe(`Bearer ${tokenOf('cluster2', 1)}`);
    await mountImport(root, 'cluster2', 2);
    expect(await authorization(kubeConfig)).toBe(`Bearer ${tokenOf('cluster2', 2)}`);
  });

  it('takes the namespace file when the context has no namespace, else default', async () => {
    const data = importData('c', 1);
    data.config = data.config.replace(/\n\s+namespace: "?ns-1"?/, '');
    await writeSecretVolume(path.join(root, 'c'), data);
    expect((await namedServiceAccountImportConfigAndNamespace('c')).namespace).toBe('ns-1');
    delete data.namespace;
    await writeSecretVolume(path.join(root, 'c'), data);
    expect((await namedServiceAccountImportConfigAndNamespace('c')).namespace).toBe('default');
  });

  it('reads a plain directory (no ..data) too', async () => {
    await mkdir(path.join(root, 'plain'));
    for (const [k, v] of Object.entries(importData('plain', 7))) await writeFile(path.join(root, 'plain', k), v);
    const { kubeConfig, namespace } = await namedServiceAccountImportConfigAndNamespace('plain');
    expect(namespace).toBe('ns-7');
    expect(await authorization(kubeConfig)).toBe(`Bearer ${tokenOf('plain', 7)}`);
  });

  it.each([['../etc'], ['a/b'], ['Cluster2'], [''], ['..data'], ['-x'], ['x'.repeat(254)], ['with space']])('rejects the invalid name %j', async (name) => {
    const e = await expectConfigError(namedServiceAccountImportConfigAndNamespace(name), 'InvalidName', 'invalid service account import name');
    expect(e.details.name).toBe(name);
  });

  it('names the import, the path and what is mounted when it is not mounted', async () => {
    await expectConfigError(namedServiceAccountImportConfigAndNamespace('nope'), 'NotMounted', 'nope', path.join(root, 'nope'), `no import is mounted under ${root}`);
    await mountImport(root, 'a');
    await mountImport(root, 'b');
    const e = await expectConfigError(namedServiceAccountImportConfigAndNamespace('nope'), 'NotMounted', 'mounted: a, b');
    expect(e.details.names).toEqual(['a', 'b']);
  });

  it('reports a volume without a config file', async () => {
    await writeSecretVolume(path.join(root, 'c'), { token: 'x' });
    await expectConfigError(namedServiceAccountImportConfigAndNamespace('c'), 'InvalidFile', 'has no config file', 'files: token');
  });

  it('reports decode failures of the mounted files with path and field, without quoting values', async () => {
    const cases: [Record<string, string>, string, string | undefined][] = [
      [{ namespace: 'Not_A_Namespace' }, 'namespace', undefined],
      [{ server: 'ftp://x' }, 'server', undefined],
      [{ token: 'two words' }, 'token', undefined],
      [{ 'ca.crt': 'garbage' }, 'ca.crt', undefined],
      [{ config: 'users:\n- name: c\n  user:\n    tokenFile: 12345\n' }, 'config', 'users.0.user.tokenFile'],
      [{ config: 'clusters: [{name: c}]\n' }, 'config', 'clusters.0.cluster'],
    ];
    for (const [override, file, field] of cases) {
      await writeSecretVolume(path.join(root, 'c'), { ...importData('c'), ...override });
      const e = await expectConfigError(namedServiceAccountImportConfigAndNamespace('c'), 'InvalidFile', path.join(root, 'c', file));
      if (field) expect(e.details.field).toBe(field);
      if (field) expect(e.message).toContain(field);
      expect(e.message).not.toContain('12345');
      expect(e.message).not.toContain('two words');
    }
  });

  it('reports YAML syntax errors by line without echoing the line (it may hold a token)', async () => {
    await writeSecretVolume(path.join(root, 'c'), { ...importData('c'), config: 'users:\n- name: c\n  user: {token: "secret-token-value\n' });
    const e = await expectConfigError(namedServiceAccountImportConfigAndNamespace('c'), 'InvalidFile', 'not valid YAML at line');
    expect(e.message).not.toContain('secret-token-value');
  });

  it('reports a tokenFile that does not exist, naming it', async () => {
    const data = importData('c');
    delete data.token;
    await writeSecretVolume(path.join(root, 'c'), data);
    await expectConfigError(namedServiceAccountImportConfigAndNamespace('c'), 'ReadFailed', `tokenFile of user c ${path.join(root, 'c', 'token')} cannot be read (ENOENT)`);
  });

  it('accepts the mountRoot option instead of the environment variable', async () => {
    const other = await tempDir('root2');
    cleanup.push(other.remove);
    await mountImport(other.dir, 'x', 5);
    expect((await namedServiceAccountImportConfigAndNamespace('x', { mountRoot: other.dir })).namespace).toBe('ns-5');
  });
});

describe('serviceAccountImportConfigAndNamespace', () => {
  it('errors with the count when none is mounted (missing root included)', async () => {
    const e = await expectConfigError(serviceAccountImportConfigAndNamespace(), 'NoImportMounted', '0 under');
    expect(e.details.count).toBe(0);
    process.env[MOUNT_ROOT_ENV] = path.join(root, 'does-not-exist');
    await expectConfigError(serviceAccountImportConfigAndNamespace(), 'NoImportMounted');
  });

  it('loads the single import', async () => {
    await mountImport(root, 'only', 4);
    expect((await serviceAccountImportConfigAndNamespace()).namespace).toBe('ns-4');
  });

  it('errors naming the count and the names when several are mounted', async () => {
    await mountImport(root, 'a');
    await mountImport(root, 'b');
    await mountImport(root, 'c');
    const e = await expectConfigError(serviceAccountImportConfigAndNamespace(), 'SeveralImportsMounted', '3 service account imports', 'a, b, c', 'pick one');
    expect(e.details).toMatchObject({ count: 3, names: ['a', 'b', 'c'] });
  });

  it('ignores entries that are not imports: hidden, invalid names, files, empty directories', async () => {
    await mountImport(root, 'real');
    await mkdir(path.join(root, 'lost+found'));
    await mkdir(path.join(root, '.hidden'));
    await mkdir(path.join(root, 'empty'));
    await writeFile(path.join(root, 'file'), 'x');
    expect(await mountedServiceAccountImportNames()).toEqual(['real']);
    expect((await serviceAccountImportConfigAndNamespace()).source).toMatchObject({ name: 'real' });
  });
});

describe('allServiceAccountImportConfigsAndNamespaces', () => {
  it('is empty with no import, and has every import by name otherwise', async () => {
    expect((await allServiceAccountImportConfigsAndNamespaces()).size).toBe(0);
    await mountImport(root, 'b', 2);
    await mountImport(root, 'a', 1);
    const all = await allServiceAccountImportConfigsAndNamespaces();
    expect([...all.keys()]).toEqual(['a', 'b']);
    expect(all.get('a')?.namespace).toBe('ns-1');
    expect(all.get('b')?.kubeConfig.getCurrentCluster()?.server).toBe(serverOf('b', 2));
    expect(await authorization(all.get('b')!.kubeConfig)).toBe(`Bearer ${tokenOf('b', 2)}`);
  });

  it('fails as a whole, naming the import, when one is broken', async () => {
    await mountImport(root, 'good');
    await writeSecretVolume(path.join(root, 'bad'), { ...importData('bad'), namespace: 'NO' });
    await expectConfigError(allServiceAccountImportConfigsAndNamespaces(), 'InvalidFile', path.join(root, 'bad', 'namespace'));
  });
});

describe('configAndNamespace', () => {
  it('uses the single mounted import even when a kubeconfig exists', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'dev' }], 'dev'));
    await mountImport(root, 'only', 2);
    const r = await configAndNamespace();
    expect(r.source).toMatchObject({ kind: 'import', name: 'only' });
  });

  it('errors asking for a name when several imports are mounted (no silent fall-back)', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'dev' }], 'dev'));
    await mountImport(root, 'a');
    await mountImport(root, 'b');
    await expectConfigError(configAndNamespace(), 'SeveralImportsMounted', 'pick one by name');
  });

  it('surfaces a broken single import instead of falling back to the kubeconfig', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'dev' }], 'dev'));
    await writeSecretVolume(path.join(root, 'a'), { ...importData('a'), server: 'nope' });
    await expectConfigError(configAndNamespace(), 'InvalidFile', path.join(root, 'a', 'server'));
  });

  it('falls back to the current context of $KUBECONFIG, merged as kubectl merges it', async () => {
    const first = await writeKubeconfig(home, 'first', kubeconfigYaml([{ name: 'one', namespace: 'team-1' }], 'one'));
    const second = await writeKubeconfig(home, 'second', kubeconfigYaml([{ name: 'two' }, { name: 'one', namespace: 'shadowed' }], 'two'));
    process.env.KUBECONFIG = [path.join(home, 'missing'), first, second].join(path.delimiter);
    const r = await configAndNamespace();
    expect(r.source).toEqual({ kind: 'kubeconfig', context: 'one', paths: [first, second] });
    expect(r.namespace).toBe('team-1');
    expect(await authorization(r.kubeConfig)).toBe('Bearer kc-token-one');
  });

  it('falls back to ~/.kube/config with namespace default', async () => {
    await mkdir(path.join(home, '.kube'));
    await writeKubeconfig(path.join(home, '.kube'), 'config', kubeconfigYaml([{ name: 'home' }], 'home'));
    const r = await configAndNamespace();
    expect(r.source).toMatchObject({ kind: 'kubeconfig', context: 'home' });
    expect(r.namespace).toBe('default');
  });

  it('errors clearly when there is nothing at all', async () => {
    await expectConfigError(configAndNamespace(), 'NoConfiguration', `no service account import mounted under ${root}`, 'not running in a cluster');
  });

  it('falls back to the in-cluster service account (files re-read, POD_NAMESPACE first)', async () => {
    const sa = await tempDir('sa');
    cleanup.push(sa.remove);
    await writeSecretVolume(sa.dir, { token: 'in-cluster-token-1', 'ca.crt': importData('x')['ca.crt']!, namespace: 'pod-ns' });
    const base = loaderEnvironment({}, { HOME: home, [MOUNT_ROOT_ENV]: root });
    const env = { ...base, inCluster: { host: 'fd00::1', port: '443', dir: sa.dir } };
    const r = (await loadDefault(env)).value;
    expect(r.source).toEqual({ kind: 'in-cluster', path: sa.dir });
    expect(r.namespace).toBe('pod-ns');
    expect(r.kubeConfig.getCurrentCluster()?.server).toBe('https://[fd00::1]:443');
    expect(await authorization(r.kubeConfig)).toBe('Bearer in-cluster-token-1');
    await writeSecretVolume(sa.dir, { token: 'in-cluster-token-2', 'ca.crt': importData('x')['ca.crt']!, namespace: 'pod-ns' });
    expect(await authorization(r.kubeConfig)).toBe('Bearer in-cluster-token-2');
    const withPodNs = { ...env, inCluster: { ...env.inCluster, podNamespace: 'from-env' } };
    expect((await loadDefault(withPodNs)).value.namespace).toBe('from-env');
    // No kubeconfig and no context asked for → in-cluster; a context asked for → not found.
    expect((await loadKubeconfigContext(env, '', '')).value.source.kind).toBe('in-cluster');
    await expect(loadKubeconfigContext(env, '', 'dev')).rejects.toMatchObject({ code: 'ContextNotFound' });
  });
});

describe('configAndNamespaceForKubeconfigAndContext', () => {
  it('loads a given file and context; empty context = current; unknown context lists the contexts', async () => {
    const file = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'a', namespace: 'ns-a' }, { name: 'b' }], 'b'));
    expect((await configAndNamespaceForKubeconfigAndContext(file, 'a')).namespace).toBe('ns-a');
    expect((await configAndNamespaceForKubeconfigAndContext(file, '')).source).toMatchObject({ context: 'b' });
    const e = await expectConfigError(configAndNamespaceForKubeconfigAndContext(file, 'zzz'), 'ContextNotFound', file, '"zzz" not found', 'contexts: a, b');
    expect(e.details.names).toEqual(['a', 'b']);
  });

  it('uses the default rules for an empty path', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'a' }, { name: 'b', namespace: 'ns-b' }], 'a'));
    expect((await configAndNamespaceForKubeconfigAndContext('', 'b')).namespace).toBe('ns-b');
  });

  it('errors for a missing explicit file, a dangling context, and no current context among several', async () => {
    await expectConfigError(configAndNamespaceForKubeconfigAndContext(path.join(home, 'nope'), ''), 'ReadFailed', `cannot read kubeconfig ${path.join(home, 'nope')}: ENOENT`);
    const dangling = await writeKubeconfig(home, 'dangling', 'contexts: [{name: x, context: {cluster: gone}}]\n');
    await expectConfigError(configAndNamespaceForKubeconfigAndContext(dangling, 'x'), 'InvalidFile', 'refers to cluster "gone"');
    const noCurrent = await writeKubeconfig(home, 'nocurrent', kubeconfigYaml([{ name: 'a' }, { name: 'b' }]));
    await expectConfigError(configAndNamespaceForKubeconfigAndContext(noCurrent, ''), 'ContextNotFound', 'no current-context set and 2 contexts');
  });

  it('honours a user tokenFile (relative to the kubeconfig, trimmed, re-read on change)', async () => {
    const file = await writeKubeconfig(
      home,
      'kc',
      'clusters: [{name: c, cluster: {server: "https://c.test"}}]\nusers: [{name: u, user: {tokenFile: tok}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n',
    );
    await writeFile(path.join(home, 'tok'), 'first\n');
    const { kubeConfig } = await configAndNamespaceForKubeconfigAndContext(file, '');
    expect(await authorization(kubeConfig)).toBe('Bearer first');
    await writeFile(path.join(home, 'tok'), 'second-and-longer');
    expect(await authorization(kubeConfig)).toBe('Bearer second-and-longer');
    await rm(path.join(home, 'tok'));
    await expect(authorization(kubeConfig)).rejects.toMatchObject({ code: 'ReadFailed', message: expect.stringContaining(path.join(home, 'tok')) });
  });
});

describe('allNamedConfigsAndNamespaces', () => {
  it('is empty with nothing, and lists imports then contexts; an import wins a name clash', async () => {
    expect((await allNamedConfigsAndNamespaces()).size).toBe(0);
    await mountImport(root, 'shared', 1);
    await mountImport(root, 'imp', 2);
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'ctx-b', namespace: 'nb' }, { name: 'shared' }, { name: 'ctx-a' }], 'ctx-b'));
    const all = await allNamedConfigsAndNamespaces();
    expect([...all.keys()]).toEqual(['imp', 'shared', 'ctx-b', 'ctx-a']);
    expect(all.get('shared')?.source.kind).toBe('import');
    expect(all.get('ctx-b')).toMatchObject({ namespace: 'nb', source: { kind: 'kubeconfig', context: 'ctx-b' } });
    expect(all.get('ctx-a')?.kubeConfig.getCurrentContext()).toBe('ctx-a');
    expect(all.get('ctx-b')?.kubeConfig.getCurrentContext()).toBe('ctx-b');
  });

  it('fails naming the broken context', async () => {
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', 'contexts: [{name: ok, context: {cluster: c}}, {name: broken, context: {cluster: gone}}]\nclusters: [{name: c, cluster: {server: "https://c"}}]\n');
    await expectConfigError(allNamedConfigsAndNamespaces(), 'InvalidFile', 'context broken refers to cluster "gone"');
  });
});

describe('the Go library\'s remaining helpers', () => {
  it('namedConfigAndNamespace: the import of that name, else the context of that name; neither → NotMounted listing both', async () => {
    await mountImport(root, 'shared', 1);
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'shared' }, { name: 'ctx-only', namespace: 'nc' }], 'shared'));
    expect((await namedConfigAndNamespace('shared')).source).toMatchObject({ kind: 'import', name: 'shared' });
    expect(await namedConfigAndNamespace('ctx-only')).toMatchObject({ namespace: 'nc', source: { kind: 'kubeconfig', context: 'ctx-only' } });
    expect((await namedConfigAndNamespace('ctx-only')).kubeConfig.getCurrentContext()).toBe('ctx-only');
    const e = await expectConfigError(namedConfigAndNamespace('nowhere'), 'NotMounted', '"nowhere"', 'mounted imports under', 'shared', 'kubeconfig contexts: shared, ctx-only');
    expect(e.details).toMatchObject({ name: 'nowhere', names: ['shared'] });
  });

  it('namedConfigAndNamespace: a mounted import that is broken is an error, not replaced by the context of its name', async () => {
    await writeSecretVolume(path.join(root, 'shared'), { ...importData('shared', 1), config: 'clusters: [' });
    process.env.KUBECONFIG = await writeKubeconfig(home, 'kc', kubeconfigYaml([{ name: 'shared' }], 'shared'));
    await expectConfigError(namedConfigAndNamespace('shared'), 'InvalidFile', 'shared');
  });

  it('allContextsForKubeconfig: context names in file order, merged from $KUBECONFIG for \'\', or of one file; none → empty', async () => {
    expect(await allContextsForKubeconfig('')).toEqual([]);
    const a = await writeKubeconfig(home, 'a', kubeconfigYaml([{ name: 'z' }, { name: 'a' }], 'z'));
    const b = await writeKubeconfig(home, 'b', kubeconfigYaml([{ name: 'm' }, { name: 'a' }], 'm'));
    process.env.KUBECONFIG = [a, b].join(path.delimiter);
    expect(await allContextsForKubeconfig('')).toEqual(['z', 'a', 'm']);
    expect(await allContextsForKubeconfig(b)).toEqual(['m', 'a']);
    await expectConfigError(allContextsForKubeconfig(path.join(home, 'missing')), 'ReadFailed', 'missing');
  });

  it('serviceAccountImportMounted and singleServiceAccountImportName', async () => {
    expect(await serviceAccountImportMounted('one')).toBe(false);
    await expectConfigError(singleServiceAccountImportName(), 'NoImportMounted');
    await mountImport(root, 'one', 1);
    expect(await serviceAccountImportMounted('one')).toBe(true);
    expect(await serviceAccountImportMounted('../one')).toBe(false);
    expect(await singleServiceAccountImportName()).toBe('one');
    await mountImport(root, 'two', 1);
    const e = await expectConfigError(singleServiceAccountImportName(), 'SeveralImportsMounted');
    expect(e.details).toMatchObject({ count: 2, names: ['one', 'two'] });
  });
});
