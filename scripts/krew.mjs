// Run by scripts/build.mjs (npm run build) after the executables, or alone [--outDir DIR]: the krew
// plugin `mcsa` from DIR/bin/kubemcsa-linux-{x64,arm64} (scripts/executables.mjs). Writes, in DIR/krew:
// - kubectl-mcsa-v<version>-linux-<arch>.tar.gz (arch amd64, arm64): the executable named
//   kubectl-mcsa and the LICENSE, reproducible (fixed order, modes, owner 0:0 and mtime:
//   $SOURCE_DATE_EPOCH, else the commit's time; gzip without a name or time), so one commit gives
//   the same bytes, hence the same sha256, on any machine;
// - mcsa.yaml, the krew manifest: each platform's archive with its sha256 and its URI, the release
//   asset of that name under tag v<version> of package.json's repository:
//   <repository>/releases/download/v<version>/<archive>. The archives are the release's assets.
// The npm package leaves DIR/krew out (package.json "files").
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { stringify } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const i = args.indexOf('--outDir');
const outDir = path.resolve(root, i >= 0 && args[i + 1] ? args[i + 1] : 'dist');
const krewDir = path.join(outDir, 'krew');
const started = Date.now();

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
/** The repository's web address, from package.json `repository` (`git+https://…/x.git` → `https://…/x`). */
const homepage = String(pkg.repository?.url ?? pkg.repository ?? '')
  .replace(/^git\+/, '')
  .replace(/\.git$/, '');
if (!/^https:\/\/github\.com\/[^/]+\/[^/]+$/.test(homepage)) {
  console.error(`krew: package.json "repository" must be a GitHub repository (https://github.com/OWNER/NAME), got ${JSON.stringify(pkg.repository)}`);
  process.exit(1);
}
const tag = `v${pkg.version}`;
/** krew's platform names for the executables' (Node's) architectures. */
const PLATFORMS = [
  { executable: 'kubemcsa-linux-x64', os: 'linux', arch: 'amd64' },
  { executable: 'kubemcsa-linux-arm64', os: 'linux', arch: 'arm64' },
];

function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  const r = spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? Number(r.stdout.trim()) : 0;
}

/** A ustar header for a regular file owned by 0:0. */
function tarHeader(name, size, mode, mtime) {
  const h = Buffer.alloc(512);
  const field = (offset, length, value) => h.write(value, offset, length, 'ascii');
  const octal = (offset, length, n) => field(offset, length, n.toString(8).padStart(length - 1, '0') + '\0');
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, mtime);
  field(148, 8, ' '.repeat(8)); // the checksum counts itself as spaces
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  field(265, 32, 'root');
  field(297, 32, 'root');
  const sum = h.reduce((a, b) => a + b, 0);
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** A tar archive of `entries` ({ name, data, mode }) in the given order, every file with the same mtime. */
function tar(entries, mtime) {
  const parts = [];
  for (const { name, data, mode } of entries) {
    parts.push(tarHeader(name, data.length, mode, mtime), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

rmSync(krewDir, { recursive: true, force: true });
mkdirSync(krewDir, { recursive: true });
const mtime = sourceDateEpoch();
const license = readFileSync(path.join(root, 'LICENSE'));
const platforms = await Promise.all(
  PLATFORMS.map(async (p) => {
    const archive = `kubectl-mcsa-${tag}-${p.os}-${p.arch}.tar.gz`;
    const executable = readFileSync(path.join(outDir, 'bin', p.executable));
    const entries = [
      { name: 'kubectl-mcsa', data: executable, mode: 0o755 },
      { name: 'LICENSE', data: license, mode: 0o644 },
    ];
    // zlib's gzip header carries no file name and a zero time: the bytes depend on the input only.
    const bytes = await promisify(gzip)(tar(entries, mtime));
    writeFileSync(path.join(krewDir, archive), bytes);
    return {
      selector: { matchLabels: { os: p.os, arch: p.arch } },
      uri: `${homepage}/releases/download/${tag}/${archive}`,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bin: 'kubectl-mcsa',
    };
  }),
);

const manifest = {
  apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
  kind: 'Plugin',
  metadata: { name: 'mcsa' },
  spec: {
    version: tag,
    homepage,
    shortDescription: 'Call other clusters as a remote ServiceAccount with short-lived tokens',
    description: [
      'kubectl mcsa is kubemcsa, the command line of multicluster-service-account: pods in a',
      'target cluster call the Kubernetes APIs of source clusters as chosen remote',
      'ServiceAccounts, with short-lived tokens that a controller refreshes and a webhook mounts.',
      '',
      'kubectl mcsa bootstrap registers a source cluster in a target cluster, grant and revoke',
      'decide in the source which ServiceAccounts a target may import, unbootstrap undoes it,',
      'export and kubeconfig print credentials by hand, and status reports the health of',
      'registrations and imports. Self-contained: no Node.js needed.',
    ].join('\n') + '\n',
    caveats: [
      'The controller and the webhook must be installed in each target cluster',
      `(manifests/install.yaml of the ${tag} release): see`,
      `${homepage}/blob/${tag}/docs/operations/install.md`,
      '',
      'Then register a source cluster:',
      '  kubectl mcsa bootstrap --target-context TARGET --source-context SOURCE --wait',
      '',
      'Shell completion: kubectl mcsa completion bash|zsh|fish',
    ].join('\n') + '\n',
    platforms,
  },
};
writeFileSync(path.join(krewDir, 'mcsa.yaml'), stringify(manifest, { lineWidth: 0 }));
console.error(`krew: mcsa.yaml (${tag}) and ${platforms.length} archives in ${path.relative(root, krewDir)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
