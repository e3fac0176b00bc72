// One kubeconfig loader for every binary: kubemcsa, the controller and the webhook, given the same
// multi-file $KUBECONFIG (duplicate names across the files, as kubectl tolerates; a user whose
// credential is a `tokenFile`), authenticate as the same identity, and all three follow the file
// when its token changes. Each identity is read back from the real API server's own 403 message
// (the probe ServiceAccounts have no rights), never from a token.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { serviceAccountKubeconfig } from '../harness/deployment.js';
import { adminKubeConfig, clusterInfo, createTestNamespace } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { ManagedProcess } from '../harness/process.js';
import { ensureCrd, kubemcsa, REPO } from './cli-support.js';

const CLUSTER = 'cluster1';
let ns: Awaited<ReturnType<typeof createTestNamespace>>;
let dir: string;
let tokenFile: string;
let env: Record<string, string>;
const running: ManagedProcess[] = [];

async function mint(serviceAccount: string): Promise<string> {
  const core = adminKubeConfig(CLUSTER).makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({ name: serviceAccount, namespace: ns.name, body: { spec: { expirationSeconds: 3600 } } });
  const token = tr.status?.token;
  if (!token) throw new Error(`no token for ${serviceAccount}`);
  return token;
}

const identity = (serviceAccount: string) => `system:serviceaccount:${ns.name}:${serviceAccount}`;

function start(name: string, script: string, args: string[]): ManagedProcess {
  const p = new ManagedProcess(name, process.execPath, ['--import', 'tsx', path.join(REPO, script), ...args], path.join(dir, `${name}.log`), env);
  running.push(p);
  return p;
}

const logOf = (p: ManagedProcess) => readFileSync(p.logFile, 'utf8');

beforeAll(async () => {
  await ensureCrd(CLUSTER);
  ns = await createTestNamespace(CLUSTER, 'loaders');
  const core = adminKubeConfig(CLUSTER).makeApiClient(CoreV1Api);
  for (const name of ['probe-a', 'probe-b']) await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-loaders-'));
  tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, await mint('probe-a'), { mode: 0o600 });
  const info = clusterInfo(CLUSTER);
  const caData = Buffer.from(info.caPem).toString('base64');
  // The first file defines everything used; the second redefines the same cluster, user and
  // context names with unusable values (kubectl: the first definition wins) and sets another
  // current context (the first file's wins).
  const first = path.join(dir, 'first.yaml');
  const second = path.join(dir, 'second.yaml');
  writeFileSync(
    first,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'shared', cluster: { server: info.server, 'certificate-authority-data': caData } }],
      users: [{ name: 'probe', user: { tokenFile } }],
      contexts: [{ name: 'probe', context: { cluster: 'shared', user: 'probe', namespace: ns.name } }],
      'current-context': 'probe',
    }),
  );
  writeFileSync(
    second,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'shared', cluster: { server: 'https://127.0.0.1:9', 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'probe', user: { token: 'not-a-token' } }],
      contexts: [
        { name: 'probe', context: { cluster: 'shared', user: 'probe' } },
        { name: 'other', context: { cluster: 'shared', user: 'probe' } },
      ],
      'current-context': 'other',
    }),
  );
  env = { KUBECONFIG: [first, second].join(path.delimiter), HOME: dir, LOG_LEVEL: 'debug' };
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop(10_000)));
  await adminKubeConfig(CLUSTER).makeApiClient(RbacAuthorizationV1Api).deleteClusterRoleBinding({ name: `${ns?.name}-viewer` }).catch(() => undefined);
  await adminKubeConfig(CLUSTER).makeApiClient(RbacAuthorizationV1Api).deleteClusterRole({ name: `${ns?.name}-viewer` }).catch(() => undefined);
  await ns?.delete();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('the same $KUBECONFIG in every binary', () => {
  it('kubemcsa authenticates as the tokenFile user of the first file', async () => {
    const r = await kubemcsa(['status'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(identity('probe-a'));
    expect(r.stderr).not.toMatch(/duplicate|127\.0\.0\.1:9/i);
  }, 120_000);

  it('the controller and the webhook authenticate as the same identity, and follow the token file', async () => {
    const controller = start('controller', 'streams/controller/main.ts', ['--no-leader-elect', '--metrics-bind-address=0', '--health-probe-bind-address=0', `--install-namespace=${ns.name}`]);
    const webhook = start('webhook', 'streams/webhook/main.ts', [
      '--no-leader-elect',
      '--listen-address=127.0.0.1:0',
      '--metrics-address=127.0.0.1:0',
      `--service-namespace=${ns.name}`,
      '--extra-sans=127.0.0.1',
    ]);
    for (const p of [controller, webhook]) {
      await waitFor(`${p.name} calls the API server as ${identity('probe-a')}`, async () => logOf(p).includes(identity('probe-a')), 60_000, 200).catch((e: Error) => {
        throw new Error(`${e.message}\n${logOf(p).slice(-3000)}`);
      });
    }
    // A new token in the file: the running controller's next requests use it, without a restart.
    writeFileSync(tokenFile, await mint('probe-b'), { mode: 0o600 });
    await waitFor(`the controller calls as ${identity('probe-b')}`, async () => logOf(controller).includes(identity('probe-b')), 60_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}\n${logOf(controller).slice(-3000)}`);
    });
    const r = await kubemcsa(['status'], { env });
    expect(r.stderr).toContain(identity('probe-b'));
    for (const p of [controller, webhook]) expect(logOf(p)).not.toMatch(/127\.0\.0\.1:9\b/);
  }, 180_000);
});

describe('kubemcsa status as an identity that may read imports but not the install namespace', () => {
  it('shows registrations and imports, and says the grants are not visible instead of failing', async () => {
    const rbac = adminKubeConfig(CLUSTER).makeApiClient(RbacAuthorizationV1Api);
    const core = adminKubeConfig(CLUSTER).makeApiClient(CoreV1Api);
    const name = `${ns.name}-viewer`;
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'viewer' } } });
    await rbac.createClusterRole({ body: { metadata: { name }, rules: [{ apiGroups: ['multicluster.admiralty.io'], resources: ['serviceaccountimports'], verbs: ['get', 'list'] }] } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns.name }] },
    });
    const file = await serviceAccountKubeconfig(CLUSTER, ns.name, 'viewer', path.join(dir, 'viewer.kubeconfig'));
    const r = await kubemcsa(['status', '--kubeconfig', file, '-o', 'json'], { env: { HOME: dir } });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { grants: unknown; imports: unknown[]; registrations: unknown[] };
    expect(out.grants).toBeNull();
    expect(Array.isArray(out.imports)).toBe(true);
    expect(r.stderr).toContain('grants not shown: this identity may not list serviceaccounts in namespace multicluster-service-account');
  }, 120_000);
});
