// npm run image [-- --out DIR]: writes the project's container images as OCI archives, without a
// container engine or a registry (docs/adr/0016-nodes-and-images.md):
//   multicluster-service-account.tar  the controller, the webhook and kubemcsa (what the Dockerfile builds)
//   multicluster-client.tar           examples/multicluster-client.ts (the getting-started client) and
//                                     examples/watch-client.ts (a long-running client), bundled
// Base content comes only from registries reachable here: the Node 24 binary from npm's `node`
// package (a devDependency), the C libraries and CA certificates from Debian packages
// (`apt-get download`, unpacked with `dpkg-deb -x`, cached). No shell, no package manager, UID
// 65532. Two runs on the same commit give the same digests. Prints one line per image on stdout:
// `<file> <ref> <digest>`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { tarLayer, treeEntries, writeImage, type Entry, type ImageConfig, type WrittenImage } from './oci.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
export const PROJECT_REF = `localhost/multicluster-service-account:${VERSION}`;
export const CLIENT_REF = `localhost/multicluster-client:${VERSION}`;
export const NONROOT = 65532;

/** Debian packages of the runtime: the C libraries `ldd node` lists, and the CA certificates. */
const DEBS = ['libc6', 'libstdc++6', 'libgcc-s1', 'ca-certificates'];
const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64'];
export const RUNTIME_ENV = ['PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'];

const say = (m: string) => process.stderr.write(`[image] ${m}\n`);

function cacheRoot(): string {
  return process.env.MCSA_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'multicluster-service-account');
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The .deb files of DEBS, downloaded once into the cache (a version change downloads the new one). */
function debianPackages(): string[] {
  const dir = path.join(cacheRoot(), 'image', 'debs');
  mkdirSync(dir, { recursive: true });
  const wanted = () => {
    const out = run('apt-cache', ['policy', ...DEBS]);
    const versions = [...out.matchAll(/^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)/gm)].map((m) => [m[1]!, m[2]!] as const);
    if (versions.length !== DEBS.length || versions.some(([, v]) => v === '(none)')) return undefined;
    return versions;
  };
  let versions = wanted();
  if (!versions) {
    say('apt package lists are empty: apt-get update');
    run('apt-get', ['update', '-qq']);
    versions = wanted();
    if (!versions) throw new Error(`apt has no candidate for one of ${DEBS.join(', ')}`);
  }
  const files: string[] = [];
  for (const [name, version] of versions) {
    const file = `${name}_${version.replace(/^\d+:/, '').replace(/:/g, '%3a')}_${name === 'ca-certificates' ? 'all' : 'amd64'}.deb`;
    if (!existsSync(path.join(dir, file))) {
      say(`apt-get download ${name}=${version}`);
      run('apt-get', ['download', `${name}=${version}`], { cwd: dir });
    }
    if (!existsSync(path.join(dir, file))) throw new Error(`apt-get download ${name} did not write ${file} in ${dir}`);
    files.push(path.join(dir, file));
  }
  return files;
}

/** The base layer: Node at /nodejs/bin/node, its C libraries, CA certificates, passwd/group with nonroot. */
export function baseEntries(): Entry[] {
  const unpacked = path.join(os.tmpdir(), `mcsa-image-debs-${process.pid}`);
  rmSync(unpacked, { recursive: true, force: true });
  try {
    for (const deb of debianPackages()) run('dpkg-deb', ['-x', deb, unpacked]);
    const entries: Entry[] = [];
    for (const d of LIB_DIRS) {
      const full = path.join(unpacked, d);
      if (!existsSync(full)) continue;
      // Shared objects directly in the library directories (not gconv, audit or other plugins).
      for (const e of treeEntries(full, `/${d}`, (rel) => rel.includes('/') || !/\.so(\.|$)/.test(rel))) if (e.type !== 'dir') entries.push(e);
    }
    const certDir = path.join(unpacked, 'usr/share/ca-certificates/mozilla');
    const bundle = readdirSync(certDir).filter((f) => f.endsWith('.crt')).sort().map((f) => readFileSync(path.join(certDir, f), 'utf8').trimEnd() + '\n').join('');
    entries.push({ path: '/etc/ssl/certs/ca-certificates.crt', type: 'file', mode: 0o644, data: Buffer.from(bundle) });
    const node = realpathSync(path.join(ROOT, 'node_modules', 'node', 'bin', 'node'));
    entries.push({ path: '/nodejs/bin/node', type: 'file', mode: 0o755, data: readFileSync(node) });
    entries.push(
      { path: '/etc/passwd', type: 'file', mode: 0o644, data: Buffer.from(`root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`) },
      { path: '/etc/group', type: 'file', mode: 0o644, data: Buffer.from(`root:x:0:\nnonroot:x:${NONROOT}:\n`) },
      { path: '/etc/nsswitch.conf', type: 'file', mode: 0o644, data: Buffer.from('passwd: files\ngroup: files\nhosts: files dns\n') },
      { path: '/home/nonroot', type: 'dir', mode: 0o700, owner: NONROOT },
      { path: '/tmp', type: 'dir', mode: 0o1777 },
    );
    return entries;
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
}

/**
 * The compiled tree (`npm run build` into .tmp/image/dist), without declaration files. The
 * entry points are self-contained bundles (scripts/build.mjs): no node_modules layer.
 */
function appEntries(): Entry[] {
  const out = path.join(ROOT, '.tmp', 'image', 'dist');
  say('npm run build');
  run(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs'), '--outDir', out, '--no-executables']);
  return [
    // The library (dist/src) is for npm users; the image runs only the bundles.
    ...treeEntries(out, '/app', (rel) => rel.endsWith('.d.ts') || rel === 'src' || rel.startsWith('src/')),
    { path: '/app/package.json', type: 'file', mode: 0o644, data: readFileSync(path.join(ROOT, 'package.json')) },
  ];
}

/** examples/<example>.ts and everything it imports, as one ES module. */
async function clientBundle(example: string): Promise<Buffer> {
  const r = await build({
    entryPoints: [path.join(ROOT, 'examples', `${example}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    write: false,
    legalComments: 'none',
    logLevel: 'warning',
    banner: { js: "import { createRequire as __mcsaCreateRequire } from 'node:module'; const require = __mcsaCreateRequire(import.meta.url);" },
  });
  return Buffer.from(r.outputFiles[0]!.contents);
}

const projectConfig: ImageConfig = { user: `${NONROOT}:${NONROOT}`, workingDir: '/app', env: RUNTIME_ENV, entrypoint: ['/nodejs/bin/node'], cmd: ['cli/kubemcsa.js', '--help'] };

export async function buildImages(outDir: string): Promise<WrittenImage[]> {
  mkdirSync(outDir, { recursive: true });
  const t0 = Date.now();
  const base = tarLayer(baseEntries());
  say(`base layer: Node ${run(path.join(ROOT, 'node_modules', 'node', 'bin', 'node'), ['--version']).trim()}, ${DEBS.join(', ')} (${(base.length / 1048576).toFixed(0)} MiB)`);
  const app = tarLayer(appEntries());
  const project = writeImage(path.join(outDir, 'multicluster-service-account.tar'), PROJECT_REF, [base, app], projectConfig);
  const client = writeImage(path.join(outDir, 'multicluster-client.tar'), CLIENT_REF, [base, tarLayer([
    { path: '/app/package.json', type: 'file', mode: 0o644, data: Buffer.from('{"type":"module"}\n') },
    { path: '/app/multicluster-client.js', type: 'file', mode: 0o644, data: await clientBundle('multicluster-client') },
    { path: '/app/watch-client.js', type: 'file', mode: 0o644, data: await clientBundle('watch-client') },
  ])], { ...projectConfig, cmd: ['multicluster-client.js'] });
  say(`images written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return [project, client];
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--out');
  const out = path.resolve(i >= 0 && args[i + 1] ? args[i + 1]! : path.join(ROOT, '.tmp', 'images'));
  for (const img of await buildImages(out)) console.log(`${img.file} ${img.ref} ${img.digest}`);
}
