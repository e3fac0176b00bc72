// The npm package and the image layout, from a real `npm run build` into a scratch directory (the
// build takes 10-25 s, so this lives with the slow tests rather than the unit tests):
// - `npm pack --dry-run` of package.json's `files` lists the library with its .d.ts, the bins,
//   the manifests and the LICENSE, and nothing else (no tests, no TypeScript sources);
// - the `.` and `./config` exports import under Node and type-check under tsc (NodeNext);
// - the `kubemcsa` and `kubectl-mcsa` bins run through their shebang (`--help`, exit 0);
// - installed from the packed tarball into a project outside the checkout, the library pulls only
//   what the loaders need (no express, winston, prom-client, x509, commander) and its bins run;
// - laid out as the Dockerfile lays it out (the bundles + package.json at WORKDIR, outside the
//   checkout: no node_modules), the Deployments' `node streams/…/main.js` commands start;
// - the controller's entry point is a bundle (docs/adr/0014) that starts alone (no node_modules)
//   and, run with the Deployment's flags and environment, converges a registration and an import
//   on real clusters (the other controller suites run the TypeScript sources);
// - the kubemcsa executables run without Node through bootstrap, status, export and unbootstrap;
// - the krew plugin `mcsa` (dist/krew): a manifest krew's own validator accepts, reproducible
//   archives holding the executables as kubectl-mcsa with the LICENSE, installed by real krew
//   (built from its Go module, test/tools/krew) into a scratch KREW_ROOT and run through
//   kubectl's plugin lookup (`kubectl mcsa version`, `kubectl mcsa status`);
// - `npm i -g` of the tarball: kubemcsa and `kubectl mcsa` (plugin lookup) work on Node 24, and
//   say in one line that an older Node.js (the machine's Node 20) is too old.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { adminKubeConfig, createTestNamespace, kubectl, testClusters, type RunResult } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { toolBinary } from '../harness/tools.js';
import { ensureCrd } from './cli-support.js';
import { bootstrappedPair, createImport, createPodLister, readSecret, startController, tokenOf, waitForReady, type RunningController } from './controller-support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE_BIN = path.join(ROOT, 'node_modules', '.bin');

interface PackageJson {
  name: string;
  version: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  files: string[];
  repository: { url: string };
}
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    // node_modules/.bin first: Node 24 for npm scripts and shebangs, as npm itself arranges.
    const env = { ...process.env, PATH: `${NODE_BIN}${path.delimiter}${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' };
    execFile(cmd, args, { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs a program from a directory outside the checkout with exactly `env` (nothing inherited: no Node.js on PATH unless given). */
function runIsolated(file: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: os.tmpdir(), env, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The regular files of a .tar.gz (ustar), in archive order. */
function untar(file: string): { name: string; mode: number; uid: number; gid: number; mtime: number; data: Buffer }[] {
  const tar = gunzipSync(readFileSync(file));
  const entries = [];
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const text = (offset: number, length: number) => tar.toString('latin1', at + offset, at + offset + length).replace(/\0.*$/s, '');
    const octal = (offset: number, length: number) => parseInt(text(offset, length).trim(), 8);
    const size = octal(124, 12);
    entries.push({ name: text(0, 100), mode: octal(100, 8), uid: octal(108, 8), gid: octal(116, 8), mtime: octal(136, 12), data: tar.subarray(at + 512, at + 512 + size) });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** The Deployments' commands (`node [flags] X.js`). */
function deploymentCommands(): string[][] {
  return ['manifests/controller/deployment.yaml', 'manifests/webhook/deployment.yaml'].flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(ROOT, file), 'utf8'))
      .map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { command?: string[] }[] } } } } | null)
      .filter((o) => o?.kind === 'Deployment')
      .flatMap((o) => (o!.spec?.template?.spec?.containers ?? []).map((c) => c.command!)),
  );
}

/** `node X.js` scripts of the Deployments. */
function deploymentScripts(): string[] {
  return deploymentCommands().map((c) => c.find((a) => a.endsWith('.js'))!);
}

describe('package (npm run build)', () => {
  // The stage is a package root inside the repository (node_modules resolve from /work/…/node_modules):
  // package.json, LICENSE, README.md, manifests/ and a fresh dist/.
  let stage: string;
  let buildMs: number;
  beforeAll(async () => {
    mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
    stage = mkdtempSync(path.join(ROOT, '.tmp', 'package-'));
    const started = Date.now();
    const r = await run('npm', ['run', 'build', '--silent', '--', '--outDir', path.join(stage, 'dist')], ROOT, 180_000);
    buildMs = Date.now() - started;
    if (r.code !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
    for (const f of ['package.json', 'LICENSE', 'README.md']) if (existsSync(path.join(ROOT, f))) copyFileSync(path.join(ROOT, f), path.join(stage, f));
    cpSync(path.join(ROOT, 'manifests'), path.join(stage, 'manifests'), { recursive: true });
  }, 200_000);
  let cleanupApp: (() => void) | undefined;
  afterAll(() => {
    if (stage) rmSync(stage, { recursive: true, force: true });
    cleanupApp?.();
  });

  it('builds (the bundles, both executables, the krew archives) within three minutes', () => {
    console.log(`npm run build: ${(buildMs / 1000).toFixed(1)} s`);
    expect(buildMs).toBeLessThan(180_000);
  });

  it('packs the library with its types, the bins, the manifests and the LICENSE, and no tests or sources', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], stage);
    expect({ code: r.code, stderr: r.stderr.replace(/^npm (notice|warn).*\n?/gm, '') }).toEqual({ code: 0, stderr: '' });
    const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    const exportTargets = Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : [e.types, e.default]));
    const expected = [
      'package.json',
      'LICENSE',
      'manifests/install.yaml',
      'manifests/kustomization.yaml',
      'dist/src/config/index.js',
      'dist/src/config/index.d.ts',
      'dist/src/config/loaders.d.ts',
      pkg.main,
      pkg.types,
      ...Object.values(pkg.bin),
      ...exportTargets,
      ...deploymentScripts().map((s) => `dist/${s}`),
    ].map((p) => p.replace(/^\.\//, ''));
    expect(files).toEqual(expect.arrayContaining([...new Set(expected)]));
    expect(files.filter((f) => f.startsWith('test/') || f.includes('.test.') || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.startsWith('node_modules/') || /^dist\/(bin|krew|api)\//.test(f))).toEqual([]);
    expect(pkg.exports['./config']).toEqual({ types: './dist/src/config/index.d.ts', default: './dist/src/config/index.js' });
  });

  it('exports the config library as "." and "./config", importable by package name', async () => {
    const probe = path.join(stage, 'probe.mjs');
    writeFileSync(
      probe,
      [
        `const root = await import('${pkg.name}');`,
        `const config = await import('${pkg.name}/config');`,
        `console.log(JSON.stringify({ same: root.configAndNamespace === config.configAndNamespace, exports: Object.keys(config).sort() }));`,
      ].join('\n'),
    );
    const r = await run(process.execPath, [probe], stage);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(r.stdout) as { same: boolean; exports: string[] };
    expect(out.same).toBe(true);
    expect(out.exports).toEqual(
      expect.arrayContaining([
        'namedServiceAccountImportConfigAndNamespace',
        'serviceAccountImportConfigAndNamespace',
        'allServiceAccountImportConfigsAndNamespaces',
        'configAndNamespace',
        'allNamedConfigsAndNamespaces',
        'configAndNamespaceForKubeconfigAndContext',
        'configAndNamespace$',
        'MOUNT_ROOT_ENV',
        'namedConfigAndNamespace',
        'allContextsForKubeconfig',
        'serviceAccountImportMounted',
        'singleServiceAccountImportName',
      ]),
    );
  });

  it('ships types a NodeNext TypeScript consumer can use', async () => {
    writeFileSync(
      path.join(stage, 'consumer.ts'),
      [
        `import { configAndNamespace, type ConfigAndNamespace } from '${pkg.name}/config';`,
        `import { allNamedConfigsAndNamespaces$ } from '${pkg.name}';`,
        `const load: () => Promise<ConfigAndNamespace> = configAndNamespace;`,
        `const ns: Promise<string> = load().then((c) => c.namespace);`,
        `export { ns, allNamedConfigsAndNamespaces$ };`,
        `// @ts-expect-error the loaders take no number`,
        `configAndNamespace(42);`,
      ].join('\n'),
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2023', '--skipLibCheck', '--types', 'node', 'consumer.ts'];
    const r = await run(process.execPath, [tsc, ...args], stage);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
  });

  it.each(Object.keys(pkg.bin))('runs the %s bin through its shebang (--help, exit 0)', async (bin) => {
    const target = path.join(stage, pkg.bin[bin]!);
    expect(readFileSync(target, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    // What npm does on install: a link named after the bin, pointing at an executable target.
    const binDir = path.join(stage, 'bin');
    mkdirSync(binDir, { recursive: true });
    if (!existsSync(path.join(binDir, bin))) symlinkSync(target, path.join(binDir, bin));
    chmodSync(target, 0o755);
    const r = await run(path.join(binDir, bin), ['--help'], stage);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^Usage: kubemcsa /);
    expect(r.stdout).toMatch(/\bbootstrap\b/);
  });

  /** `npm pack` of the built package into `dir`: the tarball's path. */
  const packInto = async (dir: string): Promise<string> => {
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], stage);
    expect({ code: packed.code }).toEqual({ code: 0 });
    return path.join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  };

  it('installs for a library user with only what the loaders need; its kubemcsa bin runs without the servers\' dependencies', async () => {
    // Outside the checkout: nothing resolves from the repository's node_modules.
    const consumer = mkdtempSync(path.join(os.tmpdir(), 'mcsa-consumer-'));
    try {
      const tarball = await packInto(consumer);
      writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      const installed = await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], consumer, 240_000);
      expect({ code: installed.code, stderr: installed.stderr.replace(/^npm (notice|warn).*\n?/gm, '') }).toEqual({ code: 0, stderr: '' });
      const ls = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], consumer);
      expect(ls.code).toBe(0);
      const packages = new Set(ls.stdout.split('\n').filter((l) => l.includes('node_modules')).map((l) => l.slice(l.lastIndexOf('node_modules/') + 'node_modules/'.length)));
      for (const server of ['express', 'winston', 'prom-client', '@peculiar/x509', 'commander', 'reflect-metadata']) expect({ server, installed: packages.has(server) }).toEqual({ server, installed: false });
      // client-node is a peer dependency (npm installs it beside the package, shared with the user's own).
      for (const needed of [pkg.name, '@kubernetes/client-node', 'rxjs', 'io-ts', 'fp-ts', 'yaml']) expect({ needed, installed: packages.has(needed) }).toEqual({ needed, installed: true });
      const probe = await run(process.execPath, ['--input-type=module', '-e', `const c = await import('${pkg.name}/config'); console.log(typeof c.configAndNamespace);`], consumer);
      expect({ code: probe.code, stdout: probe.stdout, stderr: probe.stderr }).toEqual({ code: 0, stdout: 'function\n', stderr: '' });
      for (const bin of Object.keys(pkg.bin)) {
        const help = await run(path.join(consumer, 'node_modules', '.bin', bin), ['--help'], consumer);
        expect({ bin, code: help.code, stderr: help.stderr }).toEqual({ bin, code: 0, stderr: '' });
      }
    } finally {
      rmSync(consumer, { recursive: true, force: true });
    }
  }, 300_000);

  it('installs globally from the tarball (npm i -g): kubemcsa and `kubectl mcsa` work, through kubectl\'s plugin lookup; an old Node.js gets one clear line', async () => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-global-'));
    try {
      const tarball = await packInto(scratch);
      const prefix = path.join(scratch, 'global');
      const installed = await run('npm', ['install', '--global', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--prefer-offline'], scratch, 240_000);
      expect({ code: installed.code, stderr: installed.stderr.replace(/^npm (notice|warn).*\n?/gm, '') }).toEqual({ code: 0, stderr: '' });
      const bin = path.join(prefix, 'bin');
      expect(readdirSync(bin).sort()).toEqual(['kubectl-mcsa', 'kubemcsa']);
      const { kubectl: kubectlBin, kubeconfigPath } = testClusters();
      // Node 24 (the pinned one) on PATH after the global bin directory, nothing of the checkout.
      const env = { PATH: [bin, path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter), HOME: scratch, KUBECONFIG: kubeconfigPath };
      const version = await runIsolated(path.join(bin, 'kubemcsa'), ['version'], env);
      expect({ code: version.code, stderr: version.stderr }).toEqual({ code: 0, stderr: '' });
      expect(version.stdout.split('\n')[0]).toBe(`kubemcsa ${pkg.version}`);
      const plugins = await runIsolated(kubectlBin, ['plugin', 'list', '--name-only'], env);
      expect(plugins.stdout.split('\n')).toContain('kubectl-mcsa');
      const status = await runIsolated(kubectlBin, ['mcsa', 'status', '--context', 'cluster1', '-o', 'json'], env);
      // Run alone, this suite finds cluster1 without the CRD (other suites install it): status says so and lists nothing.
      const stderr = status.stderr.replace(/^cluster cluster1 \(context cluster1\) does not serve the ServiceAccountImport API \(the CRD is not installed\): no registrations or imports\n$/, '');
      expect({ code: status.code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(status.stdout)).toMatchObject({ context: 'cluster1', registrations: expect.any(Array), imports: expect.any(Array) });
      // A Node.js older than 22 first on PATH: the machine's own when it has one (Node 20 here),
      // else the pinned one told it is 20 (a preload, as the unit test does).
      const machineNode = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' });
      const oldMachineNode = machineNode.status === 0 && Number(/^v(\d+)/.exec(machineNode.stdout)?.[1]) < 22;
      let oldEnv: Record<string, string> = { PATH: [bin, '/usr/bin', '/bin'].join(path.delimiter), HOME: scratch };
      if (!oldMachineNode) {
        const pretend = path.join(scratch, 'node-20.mjs');
        writeFileSync(pretend, "Object.defineProperty(process.versions, 'node', { value: '20.20.2' });\n");
        oldEnv = { ...env, NODE_OPTIONS: `--import=${pretend}` };
      }
      console.log(`old Node.js for kubemcsa: ${oldMachineNode ? `the machine's ${machineNode.stdout.trim()}` : 'the pinned one, told it is 20.20.2'}`);
      for (const [file, args] of [[path.join(bin, 'kubemcsa'), ['--version']], [kubectlBin, ['mcsa', 'status']]] as const) {
        const old = await runIsolated(file, [...args], oldEnv);
        expect({ code: old.code, stdout: old.stdout, lines: old.stderr.trim().split('\n').length }).toEqual({ code: 1, stdout: '', lines: 1 });
        expect(old.stderr).toMatch(/^multicluster-service-account: needs Node\.js 22 or later \(tested on 24 LTS\); this is v(20|1\d)\./);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 300_000);

  it("starts the Deployments' commands from the image layout (the bundles + package.json at WORKDIR, no node_modules)", async () => {
    // Outside the checkout, as in the image: the bundles must not need any node_modules.
    const app = mkdtempSync(path.join(os.tmpdir(), 'mcsa-app-'));
    cleanupApp = () => rmSync(app, { recursive: true, force: true });
    for (const dir of ['streams', 'cli']) cpSync(path.join(stage, 'dist', dir), path.join(app, dir), { recursive: true });
    copyFileSync(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));
    for (const command of deploymentCommands()) {
      // As written in the manifest, Node and V8 flags included (an unknown flag would stop the pod).
      const r = await run(process.execPath, [...command.slice(1), '--help'], app);
      expect({ command, code: r.code, stderr: r.stderr }).toEqual({ command, code: 0, stderr: '' });
      expect(r.stdout).toMatch(/^Usage: multicluster-service-account-(controller|webhook) /);
      // The bundle finds the package.json beside it (WORKDIR), as in the image.
      const v = await run(process.execPath, [...command.slice(1), '--version'], app);
      expect({ command, code: v.code, stdout: v.stdout }).toEqual({ command, code: 0, stdout: `${pkg.version}\n` });
    }
    const version = await run(process.execPath, ['cli/kubemcsa.js', '--version'], app);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });
  describe('the bundled controller', () => {
    let controller: RunningController | undefined;
    let local: Awaited<ReturnType<typeof createTestNamespace>>;
    let remote: Awaited<ReturnType<typeof createTestNamespace>>;
    let teardown: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ local, remote, teardown } = await bootstrappedPair('bundle'));
      controller = await startController({ compiled: path.join(stage, 'dist') });
    }, 120_000);

    afterAll(async () => {
      await controller?.stop();
      await teardown?.();
    }, 120_000);

    it('is self-contained: it starts from a directory with no node_modules and no compiled tree', async () => {
      const alone = mkdtempSync(path.join(os.tmpdir(), 'mcsa-bundle-alone-'));
      try {
        copyFileSync(path.join(stage, 'dist', 'streams', 'controller', 'main.js'), path.join(alone, 'main.js'));
        writeFileSync(path.join(alone, 'package.json'), '{"type":"module"}\n');
        const r = await run(process.execPath, ['main.js', '--help'], alone);
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
        expect(r.stdout).toMatch(/^Usage: multicluster-service-account-controller /);
      } finally {
        rmSync(alone, { recursive: true, force: true });
      }
    });

    it('is ASCII (a one-byte string in V8, not two-byte) and ships the licence comments beside it', () => {
      const dir = path.join(stage, 'dist', 'streams', 'controller');
      const bundle = readFileSync(path.join(dir, 'main.js'));
      expect(bundle.findIndex((b) => b > 0x7f)).toBe(-1);
      expect(bundle.toString('latin1')).toContain('For license information please see main.js.LEGAL.txt');
      expect(readFileSync(path.join(dir, 'main.js.LEGAL.txt'), 'utf8')).toMatch(/MIT License/);
    });

    it("holds none of client-node's generated models or API clients, and evaluates undici only when something uses it", () => {
      // Each would cost resident memory at start for code the controller never runs (scripts/build.mjs, ADR 0014).
      const bundle = readFileSync(path.join(stage, 'dist', 'streams', 'controller', 'main.js'), 'latin1');
      expect(bundle).not.toMatch(/attributeTypeMap|class ObjectSerializer|CoordinationV1Api/);
      // undici is required in one place only: the getter module the build puts in its stead.
      expect(bundle.match(/require_undici\(\)/g)).toEqual(['require_undici()']);
      expect(bundle).toMatch(/real\?\?=require_undici\(\)/);
    });

    it('runs with the Deployment flags and converges a registration and an import', async () => {
      expect(controller!.process.running).toBe(true);
      await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued');
      await createPodLister(adminKubeConfig('cluster2'), remote.name, 'pod-lister');
      await createImport('cluster1', { metadata: { name: 'bundled', namespace: local.name }, spec: { clusterName: 'cluster2', namespace: remote.name, name: 'pod-lister' } });
      const ready = await waitForReady('cluster1', local.name, 'bundled', 'True', 'TokenIssued');
      expect(ready.status?.secrets).toEqual([{ name: secretNameForImport('bundled') }]);
      expect(tokenOf(await readSecret('cluster1', local.name, secretNameForImport('bundled')))).toMatch(/^eyJ/);
      expect(await controller!.metric('mcsa_watch_connections')).toBe(6); // imports, Secrets, federated ConfigMaps, federated source records, policies, cluster2's ServiceAccounts
    });
  });
  describe('the kubemcsa executables (Node single executable applications)', () => {
    const exe = () => path.join(stage, 'dist', 'bin', 'kubemcsa-linux-x64');
    /** The executable from a directory outside the checkout, with no Node.js on PATH. */
    const runExe = (args: string[], env: Record<string, string> = {}) => runIsolated(exe(), args, { PATH: '/nonexistent', HOME: os.tmpdir(), KUBECONFIG: testClusters().kubeconfigPath, ...env });

    it('builds linux-x64 and linux-arm64 executables with their SHA-256 sums', () => {
      const sums = readFileSync(path.join(stage, 'dist', 'bin', 'SHA256SUMS'), 'utf8').trim().split('\n');
      expect(sums.map((l) => l.split('  ')[1])).toEqual(['kubemcsa-linux-x64', 'kubemcsa-linux-arm64']);
      for (const line of sums) {
        const [sha, name] = line.split('  ') as [string, string];
        expect(sha256(readFileSync(path.join(stage, 'dist', 'bin', name)))).toBe(sha);
      }
      // ELF machine field: 0x3e x86-64, 0xb7 AArch64.
      const machine = (name: string) => readFileSync(path.join(stage, 'dist', 'bin', name)).readUInt16LE(18);
      expect([machine('kubemcsa-linux-x64'), machine('kubemcsa-linux-arm64')]).toEqual([0x3e, 0xb7]);
    });

    it('prints the version and help without Node.js on the machine', async () => {
      expect(await runExe(['--version'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
      const help = await runExe(['--help']);
      expect(help).toMatchObject({ code: 0, stderr: '' });
      expect(help.stdout).toMatch(/^Usage: kubemcsa /);
      const version = await runExe(['version']);
      expect(version).toMatchObject({ code: 0, stderr: '' });
      expect(version.stdout).toMatch(new RegExp(`^kubemcsa ${pkg.version}\\ncommit: [0-9a-f]{40}\\nnode: v24\\.\\S+ \\(linux-x64\\)\\ntested with Kubernetes: v1\\.\\d+\\.\\d+`));
    });

    it('bootstraps, shows status, exports and unbootstraps against the test clusters', async () => {
      const names = ['--target-context', 'cluster1', '--source-context', 'cluster2', '--target-name', 'exe-target', '--source-name', 'exe-source'];
      await ensureCrd('cluster1');
      // The target's install namespace as an installation has it (the controller suites need it):
      // unbootstrap then keeps it. In the source, bootstrap creates it if absent and unbootstrap
      // removes it again, so both clusters end as they were. It may still be terminating after
      // another suite's unbootstrap.
      await waitFor(`namespace ${INSTALL_NAMESPACE} in cluster1`, async () => (await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'apply', '-f', path.join(ROOT, 'manifests', 'namespace.yaml')])).code === 0, 120_000, 500);
      try {
        const boot = await runExe(['bootstrap', ...names]);
        expect({ code: boot.code, stderr: boot.stderr.split('\n').filter((l) => l.includes('error')) }).toEqual({ code: 0, stderr: [] });
        expect(boot.stderr).toMatch(/bootstrapped: source cluster exe-source .* is registered in target cluster exe-target/);
        const status = await runExe(['status', '--context', 'cluster1', '-o', 'json']);
        expect(status.code).toBe(0);
        const registrations = (JSON.parse(status.stdout) as { registrations: { name: string }[] }).registrations.map((r) => r.name);
        expect(registrations).toContain('exe-source');
        const exported = await runExe(['export', 'default', '-n', 'default', '--context', 'cluster2', '--as', 'exe-export']);
        expect(exported.code).toBe(0);
        expect(exported.stdout).toMatch(/^kind: Secret$/m);
        expect(exported.stdout).toMatch(/^ {2}name: exe-export$/m);
      } finally {
        const un = await runExe(['unbootstrap', ...names]);
        expect({ code: un.code, stderr: un.stderr.split('\n').filter((l) => l.includes('error')) }).toEqual({ code: 0, stderr: [] });
      }
    });
  });
  describe('the krew plugin mcsa (dist/krew)', () => {
    interface KrewManifest {
      apiVersion: string;
      kind: string;
      metadata: { name: string };
      spec: { version: string; homepage: string; caveats: string; platforms: { selector: { matchLabels: Record<string, string> }; uri: string; sha256: string; bin: string }[] };
    }
    const krewDir = () => path.join(stage, 'dist', 'krew');
    const manifestFile = () => path.join(krewDir(), 'mcsa.yaml');
    const homepage = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    const archive = (arch: string) => `kubectl-mcsa-v${pkg.version}-linux-${arch}.tar.gz`;
    const EXECUTABLES: Record<string, string> = { amd64: 'kubemcsa-linux-x64', arm64: 'kubemcsa-linux-arm64' };

    it("writes a manifest krew's validator accepts, whose platforms name the release assets with their sha256", async () => {
      const validated = await runIsolated(toolBinary('validate-krew-manifest'), ['-manifest', manifestFile(), '-skip-install'], { PATH: '/nonexistent' });
      expect({ code: validated.code, stderr: validated.code === 0 ? '' : validated.stderr }).toEqual({ code: 0, stderr: '' });
      const manifest = parse(readFileSync(manifestFile(), 'utf8')) as KrewManifest;
      expect(manifest).toMatchObject({ apiVersion: 'krew.googlecontainertools.github.com/v1alpha2', kind: 'Plugin', metadata: { name: 'mcsa' }, spec: { version: `v${pkg.version}`, homepage } });
      expect(homepage).toMatch(/^https:\/\/github\.com\/[^/]+\/[^/]+$/);
      expect(manifest.spec.platforms).toEqual(
        ['amd64', 'arm64'].map((arch) => ({
          selector: { matchLabels: { os: 'linux', arch } },
          uri: `${homepage}/releases/download/v${pkg.version}/${archive(arch)}`,
          sha256: sha256(readFileSync(path.join(krewDir(), archive(arch)))),
          bin: 'kubectl-mcsa',
        })),
      );
      expect(readdirSync(krewDir()).sort()).toEqual([archive('amd64'), archive('arm64'), 'mcsa.yaml']);
    });

    it('packs each executable as kubectl-mcsa with the LICENSE, reproducibly (owner 0:0, the commit time; the same bytes when packed again)', async () => {
      const commitTime = Number(process.env.SOURCE_DATE_EPOCH ?? (await run('git', ['log', '-1', '--format=%ct'], ROOT)).stdout.trim());
      for (const [arch, executable] of Object.entries(EXECUTABLES)) {
        const entries = untar(path.join(krewDir(), archive(arch)));
        expect(entries.map(({ name, mode, uid, gid, mtime }) => ({ name, mode, uid, gid, mtime }))).toEqual([
          { name: 'kubectl-mcsa', mode: 0o755, uid: 0, gid: 0, mtime: commitTime },
          { name: 'LICENSE', mode: 0o644, uid: 0, gid: 0, mtime: commitTime },
        ]);
        expect(sha256(entries[0]!.data)).toBe(sha256(readFileSync(path.join(stage, 'dist', 'bin', executable))));
        expect(entries[1]!.data.equals(readFileSync(path.join(ROOT, 'LICENSE')))).toBe(true);
      }
      const again = mkdtempSync(path.join(stage, 'krew-again-'));
      symlinkSync(path.join(stage, 'dist', 'bin'), path.join(again, 'bin'));
      const packed = await run(process.execPath, [path.join(ROOT, 'scripts', 'krew.mjs'), '--outDir', again], ROOT);
      expect({ code: packed.code, stderr: packed.code === 0 ? '' : packed.stderr }).toEqual({ code: 0, stderr: '' });
      expect(readFileSync(path.join(again, 'krew', 'mcsa.yaml'), 'utf8')).toBe(readFileSync(manifestFile(), 'utf8'));
    }, 120_000);

    it("installs with krew into a scratch KREW_ROOT and runs as `kubectl mcsa` through kubectl's plugin lookup, without Node.js", async () => {
      const krew = toolBinary('krew');
      const kubectlBin = testClusters().kubectl;
      const krewRoot = mkdtempSync(path.join(os.tmpdir(), 'mcsa-krew-'));
      // PATH: krew's bin directory and kubectl, nothing else (no Node.js).
      const env = { KREW_ROOT: krewRoot, KREW_NO_UPGRADE_CHECK: '1', HOME: krewRoot, PATH: `${path.join(krewRoot, 'bin')}:${path.dirname(kubectlBin)}`, KUBECONFIG: testClusters().kubeconfigPath };
      try {
        const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
        const installed = await runIsolated(krew, ['install', `--manifest=${manifestFile()}`, `--archive=${path.join(krewDir(), archive(arch))}`], env);
        expect({ code: installed.code, stderr: installed.code === 0 ? '' : installed.stderr }).toEqual({ code: 0, stderr: '' });
        expect(installed.stderr).toMatch(/^Installed plugin: mcsa$/m);
        expect(installed.stderr).toContain('kubectl mcsa bootstrap --target-context'); // the caveats
        const plugins = await runIsolated(kubectlBin, ['plugin', 'list', '--name-only'], env);
        expect(plugins.stdout).toMatch(/^kubectl-mcsa$/m);
        const version = await runIsolated(kubectlBin, ['mcsa', 'version'], env);
        expect({ code: version.code, stderr: version.stderr }).toEqual({ code: 0, stderr: '' });
        expect(version.stdout).toMatch(new RegExp(`^kubemcsa ${pkg.version}\\ncommit: [0-9a-f]{40}\\nnode: v24\\.`));
        const status = await runIsolated(kubectlBin, ['mcsa', 'status', '--context', 'cluster1', '-o', 'json'], env);
        expect({ code: status.code, stderr: status.code === 0 ? '' : status.stderr }).toEqual({ code: 0, stderr: '' });
        expect(JSON.parse(status.stdout)).toMatchObject({ context: 'cluster1', registrations: expect.any(Array), imports: expect.any(Array) });
        // What krew recorded (`krew list` and `krew uninstall` need the plugin index, which needs the network).
        expect(readlinkSync(path.join(krewRoot, 'bin', 'kubectl-mcsa'))).toBe(path.join(krewRoot, 'store', 'mcsa', `v${pkg.version}`, 'kubectl-mcsa'));
        expect(parse(readFileSync(path.join(krewRoot, 'receipts', 'mcsa.yaml'), 'utf8'))).toMatchObject({ metadata: { name: 'mcsa' }, spec: { version: `v${pkg.version}` } });
      } finally {
        rmSync(krewRoot, { recursive: true, force: true });
      }
    }, 180_000);
  });
});
