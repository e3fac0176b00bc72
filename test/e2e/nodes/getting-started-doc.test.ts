// docs/getting-started.md, "On real clusters", run as written (issue 15): every fenced block of the
// section carries a `<!-- e2e: NAME -->` marker; the blocks of steps 1 to 7 run in order, each in
// a fresh `bash -euo pipefail`, against the harness clusters with real nodes, with the control
// plane's kubectl and the CLI bundle of the project image as `kubemcsa` on PATH. Only the two lines
// that must differ on the harness are changed (cluster2's address for pods, the nginx image), and
// the test checks that they are the only changes. Then: the Job's logs list exactly cluster2's
// pods, and after the cleanup block neither cluster holds anything the blocks created.
//
// It shares the clusters (and the names pod-lister, nginx, multicluster-client) with
// getting-started.test.ts and federated.test.ts, in any order. Those suites remove their nginx and
// pod-lister and wait until they are gone (removeSourceObjects); this one still checks first. Its
// cleanup removes their installation and getting-started's registration too (they install, and
// getting-started bootstraps, again in their own beforeAll).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { CLIENT_REF, PROJECT_REF } from '../../../scripts/image.js';
import { readTar } from '../../../scripts/oci.js';
import { k } from '../../harness/demo-nodes.js';
import { clusterInfo, testClusters } from '../../harness/env.js';
import { waitFor } from '../../harness/https.js';
import { SANDBOX_IMAGE } from '../../harness/node.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const DOC = 'docs/getting-started.md';
const SECTION = '## On real clusters';

/** Every block of the section, in order: [marker name, fence language]. */
const SHAPE: [string, string][] = [
  ['kubemcsa-function', 'sh'],
  ['images', 'sh'],
  ['kind-clusters', 'sh'],
  ['kind-server', 'sh'],
  ['kind-server-line', 'sh'],
  ['kind-san', 'sh'],
  ['kind-delete', 'sh'],
  ['install', 'sh'],
  ['bootstrap', 'sh'],
  ['source-objects', 'sh'],
  ['source-workload', 'sh'],
  ['grant', 'sh'],
  ['import', 'sh'],
  ['enable-namespace', 'sh'],
  ['job', 'sh'],
  ['logs', 'sh'],
  ['logs-output', 'text'],
  ['cleanup', 'sh'],
];
/**
 * The blocks run, in order. Not run: `kubemcsa-function` (the test puts the CLI on PATH), `images`
 * (the harness built and loaded exactly those images, checked below), `kind-*` (no Docker here),
 * `logs-output` (compared with the logs).
 */
const RUN = ['install', 'bootstrap', 'source-objects', 'source-workload', 'grant', 'import', 'enable-namespace', 'job', 'logs', 'cleanup'];

/** The doc's line that takes cluster2's address from the kubeconfig, and the kind address. */
const SERVER_LINE = "CLUSTER2_SERVER=$(kubectl config view --minify --context cluster2 -o jsonpath='{.clusters[0].cluster.server}')";
const KIND_SERVER = 'https://cluster2-control-plane:6443';
const NGINX = '--image=nginx ';

interface Block {
  name: string;
  lang: string;
  body: string;
}

/** The fenced blocks of `heading`'s section, each with the `<!-- e2e: NAME -->` line right above its fence. */
function sectionBlocks(md: string, heading: string): Block[] {
  const start = md.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`${DOC} has no section "${heading}"`);
  const rest = md.slice(start + heading.length + 2);
  const end = rest.search(/^## /m);
  const lines = (end < 0 ? rest : rest.slice(0, end)).split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const marker = /^<!-- e2e: ([a-z0-9-]+) -->$/.exec(lines[i - 1] ?? '');
    if (!marker) throw new Error(`${DOC}: the block at "${lines[i]}" after "${lines[i - 1]}" has no <!-- e2e: NAME --> line above it`);
    const close = lines.indexOf('```', i + 1);
    if (close < 0) throw new Error(`${DOC}: block ${marker[1]} is not closed`);
    blocks.push({ name: marker[1]!, lang: open[1]!, body: lines.slice(i + 1, close).join('\n') + '\n' });
    i = close;
  }
  return blocks;
}

/** `body` with `from` (which must occur exactly once) replaced by `to`. */
function substitute(block: Block, from: string, to: string): Block {
  const parts = block.body.split(from);
  if (parts.length !== 2) throw new Error(`block ${block.name} has ${parts.length - 1} occurrences of ${JSON.stringify(from)}, expected 1`);
  return { ...block, body: parts.join(to) };
}

/** The lines of the run blocks that differ from the doc's: [block, doc line, run line]. */
function changedLines(doc: Block[], run: Block[]): [string, string, string][] {
  return run.flatMap((r) => {
    const d = doc.find((b) => b.name === r.name)!.body.split('\n');
    return r.body.split('\n').flatMap((line, i): [string, string, string][] => (line === d[i] ? [] : [[r.name, d[i]!, line]]));
  });
}

/** A file of an image archive (docker-save manifest and uncompressed layers, as scripts/oci.ts writes them). */
function imageFile(archive: Buffer, file: string): Buffer {
  const entries = new Map(readTar(archive).flatMap((e) => (e.type === 'file' ? [[e.path, e.data] as const] : [])));
  const [manifest] = JSON.parse(entries.get('/manifest.json')!.toString()) as { Layers: string[] }[];
  for (const layer of [...manifest!.Layers].reverse()) {
    const hit = readTar(entries.get(`/${layer}`)!).find((e) => e.path === file);
    if (hit?.type === 'file') return hit.data;
  }
  throw new Error(`${file} is not in the image`);
}

const md = readFileSync(path.join(ROOT, DOC), 'utf8');
const blocks = sectionBlocks(md, SECTION);
const block = (name: string) => {
  const b = blocks.find((x) => x.name === name);
  if (!b) throw new Error(`${DOC} has no block ${name}`);
  return b;
};

/** The blocks as the harness runs them: exactly two lines changed. */
function harnessBlocks(): Block[] {
  return RUN.map((name) => {
    if (name === 'bootstrap') return substitute(block(name), SERVER_LINE, `CLUSTER2_SERVER=${clusterInfo('cluster2').podServer}`);
    if (name === 'source-workload') return substitute(block(name), NGINX, `--image=${SANDBOX_IMAGE} `);
    return block(name);
  });
}

const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-e2e-doc-'));
const checkout = path.join(work, 'checkout');
const bin = path.join(work, 'bin');
const running = new Set<ChildProcess>();
let cleanedUp = false;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs one block in a fresh bash in the scratch checkout, with kubectl and kubemcsa on PATH. */
function runBlock(b: Block, flags = '-euo'): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('bash', [flags, 'pipefail', '-c', b.body], {
      cwd: checkout,
      env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, KUBECONFIG: testClusters().kubeconfigPath, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 420_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

async function mustRun(b: Block): Promise<Ran> {
  const r = await runBlock(b);
  if (r.code !== 0) throw new Error(`block ${b.name} of ${DOC} exited ${r.code} after ${r.seconds.toFixed(1)} s\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`);
  return r;
}

/** Objects that steps 1-7 create or that belong to the project, as `Kind/namespace/name`. */
const KINDS = 'namespaces,customresourcedefinitions,mutatingwebhookconfigurations,validatingwebhookconfigurations,validatingadmissionpolicies,validatingadmissionpolicybindings,clusterroles,clusterrolebindings,roles,rolebindings,serviceaccounts,secrets,configmaps,services,deployments,replicasets,jobs,pods,poddisruptionbudgets,leases';
const PROJECT_NAMES = /^(multicluster-service-account|mcsa-grant\.|cluster2-default-pod-lister|pod-lister$|nginx|multicluster-client|serviceaccountimport)/;

/** The cluster's own heartbeats and leader elections, which come and go whatever the doc does. */
const SYSTEM_LEASES = /^Lease\/(kube-node-lease|kube-system)\//;

/** Names only: no Secret's data is ever read. */
async function objects(context: string): Promise<Set<string>> {
  const lines = await k(context, ['get', KINDS, '-A', '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}{end}']);
  return new Set(lines.split('\n').filter((l) => l !== '' && !SYSTEM_LEASES.test(l)).map((l) => `${context}:${l}`));
}
const both = async () => new Set([...(await objects('cluster1')), ...(await objects('cluster2'))]);

beforeAll(async () => {
  mkdirSync(path.join(checkout, 'manifests'), { recursive: true });
  copyFileSync(path.join(ROOT, 'manifests', 'install.yaml'), path.join(checkout, 'manifests', 'install.yaml'));
  // kubemcsa: the bundle the project image ships (cli/kubemcsa.js and the package.json it reads its version from).
  const app = path.join(work, 'app');
  mkdirSync(path.join(app, 'cli'), { recursive: true });
  const archive = readFileSync(testClusters().images![PROJECT_REF]!);
  for (const f of ['cli/kubemcsa.js', 'package.json']) writeFileSync(path.join(app, f), imageFile(archive, `/app/${f}`));
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'kubemcsa'), `#!/bin/sh\nexec '${process.execPath}' '${path.join(app, 'cli', 'kubemcsa.js')}' "$@"\n`);
  chmodSync(path.join(bin, 'kubemcsa'), 0o755);
  symlinkSync(testClusters().kubectl, path.join(bin, 'kubectl'));
});

afterAll(async () => {
  // A failed run still leaves the clusters as it found them (for the suites after it): the doc's
  // cleanup, every line tried whatever the previous one did.
  if (!cleanedUp && existsSync(path.join(checkout, 'mcsa-install'))) await runBlock(block('cleanup'), '-uo');
  for (const child of running) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}, 300_000);

describe(`${DOC}: On real clusters`, () => {
  it('marks every block; the harness changes exactly the two documented lines; the images and kind address agree', () => {
    expect(blocks.map((b) => [b.name, b.lang])).toEqual(SHAPE);
    const podServer = clusterInfo('cluster2').podServer!;
    const run = harnessBlocks();
    expect(changedLines(blocks, run)).toEqual([
      ['bootstrap', SERVER_LINE, `CLUSTER2_SERVER=${podServer}`],
      ['source-workload', 'kubectl --context cluster2 -n default create deployment nginx --image=nginx --replicas=2', `kubectl --context cluster2 -n default create deployment nginx --image=${SANDBOX_IMAGE} --replicas=2`],
    ]);
    // The doc says so, with the harness's address.
    expect(md).toContain(`\`CLUSTER2_SERVER=${podServer}\``);
    // On kind, the same line with the internal address.
    expect(block('kind-server-line').body).toBe(`CLUSTER2_SERVER=${KIND_SERVER}\n`);
    expect(md).toContain(`server: ${KIND_SERVER}`);
    // The images the harness loaded are the ones the doc builds, loads and names.
    const images = testClusters().images!;
    expect(Object.keys(images)).toEqual(expect.arrayContaining([PROJECT_REF, CLIENT_REF]));
    expect(block('images').body).toBe('npm run image\n');
    for (const ref of [PROJECT_REF, CLIENT_REF]) expect(block('kind-clusters').body).toContain(`.tmp/images/${path.basename(images[ref]!)}`);
    const kustomization = parse(/<<'EOF'\n([\s\S]*?)\nEOF\n/.exec(block('install').body)![1]!) as { images: { newName: string; newTag: string }[] };
    expect(kustomization.images.map((i) => `${i.newName}:${i.newTag}`)).toEqual([PROJECT_REF]);
    expect(block('job').body).toContain(`image: ${CLIENT_REF}\n`);
  });

  it("runs steps 1 to 7 as written: the Job's logs list cluster2's pods, and the cleanup leaves nothing behind", async () => {
    // The suites that create the same names remove them before they end; a leftover means one did not.
    await waitFor('no nginx object in cluster2 (getting-started.test.ts and federated.test.ts remove theirs in afterAll)', async () => ![...(await objects('cluster2'))].some((o) => /\/default\/nginx/.test(o)), 120_000, 1000);
    const before = await both();
    expect(before).toContain('cluster1:Namespace//default');
    const times: string[] = [];
    const out = new Map<string, Ran>();
    for (const b of harnessBlocks()) {
      const r = await mustRun(b);
      out.set(b.name, r);
      times.push(`${b.name} ${r.seconds.toFixed(1)} s`);
      if (b.name === 'logs') {
        const pods = (await k('cluster2', ['-n', 'default', 'get', 'pods', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').filter(Boolean);
        expect(pods.map((p) => p.replace(/-[a-z0-9]+-[a-z0-9]+$/, ''))).toEqual(['nginx', 'nginx']);
        expect(r.stdout.trim().split('\n').sort()).toEqual([...pods.map((p) => `cluster2-default-pod-lister\tdefault/${p}`), 'cluster2-default-pod-lister: 2 pods'].sort());
        // The doc's sample output has the same lines, but for the generated pod names.
        const shape = (text: string) => text.trim().split('\n').map((l) => l.replace(/nginx-[a-z0-9]+-[a-z0-9]+$/, 'nginx-*')).sort();
        expect(shape(r.stdout)).toEqual(shape(block('logs-output').body));
      }
    }
    cleanedUp = true;
    console.log(`${DOC} on the harness: ${times.join(', ')}`);
    // The registration is listed under the name imports use, and the address is not a loopback one.
    expect(out.get('bootstrap')!.stdout).toMatch(/^cluster2\s+\S*cluster1\s+True\s/m);
    expect(out.get('bootstrap')!.stderr).not.toMatch(/warning:/);

    const leftovers = async () => {
      const after = await both();
      const named = [...after].filter((o) => PROJECT_NAMES.test(o.split('/').pop()!));
      const labelled = (await k('cluster1', ['get', 'namespace', 'default', '-o', 'jsonpath={.metadata.labels}'])).includes('multicluster-service-account') ? ['cluster1: namespace default still labelled'] : [];
      return [...new Set([...[...after].filter((o) => !before.has(o)), ...named, ...labelled])].sort();
    };
    // The garbage collector removes the Job's pods and the import's Secret after the commands return.
    await waitFor('nothing left of steps 1-7', async () => (await leftovers()).length === 0, 120_000, 1000).catch(() => undefined);
    expect(await leftovers()).toEqual([]);
    expect(readdirSync(checkout)).toEqual(['manifests']);
  }, 1_500_000);
});
