// kubemcsa with the controller running against the target: bootstrap --wait returns once the
// registration is Ready; an import of a granted ServiceAccount becomes Ready, an ungranted one is
// Forbidden, and a revoke stops the import's token. Runs only when the controller
// (streams/controller/main.ts) is in the tree.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { freePort } from '../harness/ports.js';
import { ensureCrd, errorLine, kubemcsa, REPO, scratchDir } from './cli-support.js';

jest.setTimeout(240_000);

const CONTROLLER = path.join(REPO, 'streams', 'controller', 'main.ts');
const describeWithController = existsSync(CONTROLLER) ? describe : describe.skip;
const FLAGS = ['--target-context', 'cluster1', '--source-context', 'cluster2'];
const kc1 = () => clusterInfo('cluster1').kubeconfigPath;
const kc2 = () => clusterInfo('cluster2').kubeconfigPath;

async function readyOf(namespace: string, name: string): Promise<string> {
  const r = await kubectl(kc1(), ['get', 'sai', '-n', namespace, name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}']);
  return r.code === 0 ? r.stdout : `error: ${r.stderr}`;
}

/** Creates import `name` in `namespace` of cluster1 for ServiceAccount `remoteNamespace/remoteName` of cluster2. */
async function applyImport(name: string, namespace: string, remoteNamespace: string, remoteName: string): Promise<void> {
  const sai = {
    apiVersion: 'multicluster.admiralty.io/v1alpha1',
    kind: 'ServiceAccountImport',
    metadata: { name, namespace },
    spec: { clusterName: 'cluster2', namespace: remoteNamespace, name: remoteName },
  };
  expect((await kubectl(kc1(), ['apply', '-f', '-'], JSON.stringify(sai))).code).toBe(0);
}

describeWithController('kubemcsa with the controller running in the target', () => {
  const scratch = scratchDir('cli-controller');
  let controller: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let team: { name: string; delete: () => Promise<void> };
  /** The source namespace of the same name (namespace sameness: the target's default policy). */
  let remote: { name: string; delete: () => Promise<void> };
  const logFile = path.join(scratch.dir, 'controller.log');

  beforeAll(async () => {
    await ensureCrd('cluster1');
    await kubemcsa(['unbootstrap', ...FLAGS, '--wait']);
    team = await createTestNamespace('cluster1', 'cli-team');
    expect((await kubectl(kc2(), ['create', 'namespace', team.name])).code).toBe(0);
    remote = { name: team.name, delete: async () => void (await kubectl(kc2(), ['delete', 'namespace', team.name, '--ignore-not-found', '--wait=false'])) };
    for (const sa of ['pod-lister', 'not-granted']) expect((await kubectl(kc2(), ['create', 'serviceaccount', sa, '-n', remote.name])).code).toBe(0);
    const probes = await freePort();
    const log = openSync(logFile, 'a');
    controller = spawn(
      process.execPath,
      ['--import', 'tsx', CONTROLLER, '--kubeconfig', kc1(), '--no-leader-elect', '--metrics-bind-address', '0', '--health-probe-bind-address', `127.0.0.1:${probes}`, '--log-level', 'debug'],
      { cwd: REPO, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const proc = controller;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitFor('controller /readyz', async () => {
      if (proc.exitCode !== null) throw new Error(`controller exited (${proc.exitCode}):\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
      return (await fetch(`http://127.0.0.1:${probes}/readyz`)).status === 200;
    }, 60_000, 250);
  });

  afterAll(async () => {
    if (controller && controller.exitCode === null) {
      controller.kill('SIGTERM');
      const killer = setTimeout(() => controller?.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    }
    await kubemcsa(['unbootstrap', ...FLAGS, '--wait']);
    await team.delete();
    await remote.delete();
    scratch.cleanup();
  });

  it('bootstrap --wait returns once the registration is Ready (no controller restart needed)', async () => {
    const r = await kubemcsa(['bootstrap', ...FLAGS, '--wait', '--timeout', '90s']);
    expect(r.stderr).not.toContain('kubemcsa: error');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ServiceAccountImport multicluster-service-account\/cluster2: Ready/);
    expect(await readyOf(INSTALL_NAMESPACE, 'cluster2')).toBe('True/TokenIssued');
    const status = await kubemcsa(['status', '--context', 'cluster1', '-o', 'json']);
    expect(JSON.parse(status.stdout).registrations).toEqual([expect.objectContaining({ name: 'cluster2', ready: 'True', reason: 'TokenIssued' })]);
  });

  it('an import of a granted ServiceAccount becomes Ready and its token is the remote ServiceAccount', async () => {
    const g = await kubemcsa(['grant', 'pod-lister', '-n', remote.name, '--target-context', 'cluster1', '--source-context', 'cluster2']);
    expect(g.stderr).not.toContain('kubemcsa: error');
    expect(g.code).toBe(0);
    await applyImport('cluster2-pod-lister', team.name, remote.name, 'pod-lister');
    await waitFor('import Ready=True', async () => (await readyOf(team.name, 'cluster2-pod-lister')) === 'True/TokenIssued', 60_000, 250);
    const k = await kubemcsa(['kubeconfig', 'cluster2-pod-lister', '-n', team.name, '--context', 'cluster1']);
    expect(k.code).toBe(0);
    const file = scratch.write('import.kubeconfig', k.stdout);
    const who = await kubectl(file, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(who.stdout).toBe(`system:serviceaccount:${remote.name}:pod-lister`);
  });

  it('an import of an ungranted ServiceAccount is Forbidden, naming the grant command', async () => {
    await applyImport('cluster2-not-granted', team.name, remote.name, 'not-granted');
    await waitFor('import Ready=False/Forbidden', async () => (await readyOf(team.name, 'cluster2-not-granted')) === 'False/Forbidden', 60_000, 250);
    const message = await kubectl(kc1(), ['get', 'sai', '-n', team.name, 'cluster2-not-granted', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].message}']);
    expect(message.stdout).toContain(`kubemcsa grant not-granted -n ${remote.name} --target-name cluster1`);
  });

  it("revoke makes the granted import Forbidden and its token stop authenticating at the source", async () => {
    const file = scratch.write('before-revoke.kubeconfig', (await kubemcsa(['kubeconfig', 'cluster2-pod-lister', '-n', team.name, '--context', 'cluster1'])).stdout);
    expect((await kubectl(file, ['auth', 'whoami'])).code).toBe(0);
    const r = await kubemcsa(['revoke', 'pod-lister', '-n', remote.name, '--target-name', 'cluster1', '--source-context', 'cluster2']);
    expect(r.code).toBe(0);
    await waitFor('import Ready=False/Forbidden after revoke', async () => (await readyOf(team.name, 'cluster2-pod-lister')) === 'False/Forbidden', 60_000, 250);
    // Bound to the deleted anchor Secret: refused once the source's 10 s authentication cache lets go.
    await waitFor('the source to refuse the revoked token', async () => /Unauthorized/.test((await kubectl(file, ['auth', 'whoami'])).stderr), 30_000, 500);
  });

  it('--wait fails (exit 1) with the Ready reason when the registration cannot become Ready, and a re-run repairs it', async () => {
    const closed = await freePort();
    const r = await kubemcsa(['bootstrap', ...FLAGS, '--source-server', `https://127.0.0.1:${closed}`, '--wait', '--timeout', '20s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/token minted .*\(the source server, CA or spec changed\)/);
    expect(errorLine(r)).toMatch(/ServiceAccountImport multicluster-service-account\/cluster2 in target cluster cluster1 \(context cluster1\) is not Ready after 20 s: Ready=False/);
    const fixed = await kubemcsa(['bootstrap', ...FLAGS, '--wait', '--timeout', '90s']);
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).toMatch(/token minted .*\(the source server, CA or spec changed\)/);
    expect(await readyOf(INSTALL_NAMESPACE, 'cluster2')).toBe('True/TokenIssued');
  });
});
