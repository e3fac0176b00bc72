// Helpers for the kubemcsa integration tests: run the CLI as a child process against the harness
// clusters, install the CRD, and snapshot every object bootstrap may create (with resourceVersions).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { kubectl, testClusters, clusterInfo, type RunResult } from '../harness/env.js';
import { waitFor } from '../harness/https.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CRD_FILE = path.join(REPO, 'manifests', 'crd', 'serviceaccountimports.yaml');
export const CRD_NAME = 'serviceaccountimports.multicluster.admiralty.io';
const POLICY_CRD_FILE = path.join(REPO, 'manifests', 'crd', 'serviceaccountimportpolicies.yaml');
const POLICY_CRD_NAME = 'serviceaccountimportpolicies.multicluster.admiralty.io';

/** Runs `node --import tsx cli/kubemcsa.ts …` with KUBECONFIG pointing at the test clusters. */
export function kubemcsa(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(REPO, 'cli', 'kubemcsa.ts'), ...args],
      { cwd: REPO, env: { ...process.env, KUBECONFIG: testClusters().kubeconfigPath, ...opts.env }, timeout: opts.timeoutMs ?? 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The error line of a failed run: exactly one line on stderr starting with `kubemcsa: error:`. */
export function errorLine(r: RunResult): string {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('kubemcsa: error:'));
  if (lines.length !== 1) throw new Error(`expected one error line, got:\n${r.stderr}`);
  if (/\n\s+at /.test(r.stderr)) throw new Error(`stack trace on stderr:\n${r.stderr}`);
  return lines[0]!;
}

/** The kubeconfig holding every test cluster (contexts cluster1, cluster2). */
export const allKubeconfig = () => testClusters().kubeconfigPath;

/**
 * Installs the ServiceAccountImport CRD (and the ServiceAccountImportPolicy CRD, which the
 * controller watches) in `cluster` if absent and waits until both are served.
 */
export async function ensureCrd(cluster: string): Promise<void> {
  const kc = clusterInfo(cluster).kubeconfigPath;
  for (const [name, file] of [[CRD_NAME, CRD_FILE], [POLICY_CRD_NAME, POLICY_CRD_FILE]] as const) {
    if ((await kubectl(kc, ['get', 'crd', name])).code !== 0) {
      const r = await kubectl(kc, ['apply', '-f', file]);
      if (r.code !== 0) throw new Error(`cannot install CRD ${name} in ${cluster}: ${r.stderr}`);
    }
    const w = await kubectl(kc, ['wait', '--for=condition=Established', '--timeout=30s', `crd/${name}`]);
    if (w.code !== 0) throw new Error(`CRD ${name} not established in ${cluster}: ${w.stderr}`);
    const plural = name.split('.')[0]!;
    await waitFor(`${cluster} serving ${plural}`, async () => (await kubectl(kc, ['get', plural, '-A'])).code === 0, 30_000, 250);
  }
}

interface Item {
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion: string; labels?: Record<string, string> };
}

/**
 * Every object kubemcsa could have created in `kubeconfigPath`'s cluster, keyed
 * `Kind/namespace/name`, with its resourceVersion: labelled objects of every kind, plus the
 * Secrets and imports of the install namespace and the namespace itself.
 */
export async function snapshot(kubeconfigPath: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const hasCrd = (await kubectl(kubeconfigPath, ['get', 'crd', CRD_NAME])).code === 0;
  const queries: string[][] = [
    ['get', `namespaces,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings${hasCrd ? ',serviceaccountimports' : ''}`, '-A', '-l', 'app.kubernetes.io/managed-by=kubemcsa', '-o', 'json'],
    ['get', `secrets${hasCrd ? ',serviceaccountimports' : ''}`, '-n', INSTALL_NAMESPACE, '-o', 'json'],
    ['get', 'namespace', INSTALL_NAMESPACE, '--ignore-not-found', '-o', 'json'],
  ];
  for (const q of queries) {
    const r = await kubectl(kubeconfigPath, q);
    if (r.code !== 0) throw new Error(`kubectl ${q.join(' ')}: ${r.stderr}`);
    if (r.stdout.trim() === '') continue;
    const parsed = JSON.parse(r.stdout) as { items?: Item[] } & Partial<Item>;
    const items: Item[] = parsed.items ?? (parsed.kind ? [parsed as Item] : []);
    for (const i of items) {
      // What an installation made (manifests/namespace.yaml, the webhook's TLS Secret) is not bootstrap's.
      if (isInstallation(i)) continue;
      out.set(`${i.kind}/${i.metadata.namespace ?? ''}/${i.metadata.name}`, i.metadata.resourceVersion);
    }
  }
  return out;
}

function isInstallation(i: Item): boolean {
  const labels = i.metadata.labels ?? {};
  return labels['app.kubernetes.io/managed-by'] !== 'kubemcsa' && labels['app.kubernetes.io/name'] === 'multicluster-service-account';
}

/** Keys of a snapshot, sorted, without terminating namespaces' noise. */
export const keys = (m: Map<string, string>) => [...m.keys()].sort();

/** A KubeConfig that authenticates with a bearer token only. */
export function tokenKubeConfig(server: string, caPem: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  // A distinct user name per instance: client-node caches credentials by user name (#592).
  const user = `token-${Math.random().toString(36).slice(2)}`;
  kc.loadFromOptions({
    clusters: [{ name: 'remote', server, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: 'remote', cluster: 'remote', user }],
    currentContext: 'remote',
  });
  return kc;
}

/** HTTP status of listing `resource` in all namespaces with `kc` (200, 401, 403…). */
export async function listStatus(kc: KubeConfig, resource: 'serviceaccounts' | 'secrets'): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    if (resource === 'serviceaccounts') await core.listServiceAccountForAllNamespaces({ limit: 1 });
    else await core.listSecretForAllNamespaces({ limit: 1 });
    return 200;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw e;
  }
}

/** A scratch directory removed by `cleanup`. */
export function scratchDir(prefix: string): { dir: string; write: (name: string, content: unknown) => string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  return {
    dir,
    write: (name, content) => {
      const p = path.join(dir, name);
      writeFileSync(p, typeof content === 'string' ? content : stringify(content), { mode: 0o600 });
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The parsed `kubectl auth can-i --list` resource rows: resource → verbs (and resourceNames). */
export async function canIList(kubeconfigPath: string, user: string, namespace: string): Promise<string[]> {
  const r = await kubectl(kubeconfigPath, ['auth', 'can-i', '--list', '--as', user, '-n', namespace]);
  if (r.code !== 0) throw new Error(`kubectl auth can-i --list: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s{2,}/))
    .filter((cols) => cols.length === 4 && cols[1] === '[]')
    .map(([resource, , names, verbs]) => `${resource} ${names} ${verbs}`)
    // Every authenticated user may review itself: not the importer's grant.
    .filter((row) => !/^self\w+reviews\./.test(row))
    .sort();
}
