// Bad input to kubemcsa: a usage error (exit 2) or a failure (exit 1), one line naming what is
// wrong, and nothing created in either cluster.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries } from '../harness/binaries.js';
import { Cluster } from '../harness/cluster.js';
import { clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { freePort } from '../harness/ports.js';
import { waitFor } from '../harness/https.js';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { ensureCrd, errorLine, kubemcsa, scratchDir, snapshot } from './cli-support.js';

jest.setTimeout(180_000);

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * A one-context kubeconfig for `cluster2`, with the cluster renamed and its fields overridden;
 * the admin's client certificate unless another user is given.
 */
function kubeconfigFor(clusterName: string, cluster: Record<string, unknown>, user?: Record<string, unknown>) {
  const c2 = clusterInfo('cluster2');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: clusterName, cluster: { server: c2.server, 'certificate-authority-data': b64(c2.caPem), ...cluster } }],
    users: [{ name: 'admin', user: user ?? { 'client-certificate-data': b64(c2.admin.certPem), 'client-key-data': b64(c2.admin.keyPem) } }],
    contexts: [{ name: 'ctx', context: { cluster: clusterName, user: 'admin' } }],
    'current-context': 'ctx',
  };
}

describe('kubemcsa with bad input', () => {
  const scratch = scratchDir('cli-errors');
  const kc1 = () => clusterInfo('cluster1').kubeconfigPath;
  const kc2 = () => clusterInfo('cluster2').kubeconfigPath;
  let before: Array<Map<string, string>>;
  let third: Cluster | undefined;
  let thirdDir: string | undefined;

  /** Both shared clusters hold exactly what they held before the test. */
  async function expectNothingCreated(): Promise<void> {
    expect([await snapshot(kc1()), await snapshot(kc2())]).toEqual(before);
  }

  beforeAll(async () => {
    await ensureCrd('cluster1');
    // The reference must be a settled state: an install namespace that an earlier suite left
    // terminating would vanish during these tests and look like a change they made.
    for (const kc of [kc1(), kc2()]) {
      await waitFor('no terminating install namespace', async () => (await kubectl(kc, ['get', 'namespace', INSTALL_NAMESPACE, '--ignore-not-found', '-o', 'jsonpath={.status.phase}'])).stdout.trim() !== 'Terminating', 120_000, 250);
    }
    before = [await snapshot(kc1()), await snapshot(kc2())];
  });

  afterAll(async () => {
    await third?.stop();
    if (thirdDir) rmSync(thirdDir, { recursive: true, force: true });
    scratch.cleanup();
  });

  it('an unknown context is a usage error naming it', async () => {
    const r = await kubemcsa(['bootstrap', '--target-context', 'no-such-context', '--source-context', 'cluster2']);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/context "no-such-context" \(--target-context\) not found in kubeconfig .*contexts: cluster1, cluster2/);
    await expectNothingCreated();
  });

  it('a GKE-style kubeconfig cluster name is rejected, suggesting --source-name; the override works', async () => {
    const file = scratch.write('gke.kubeconfig', kubeconfigFor('gke_my-project_europe-west1-b_prod', {}));
    const r = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-kubeconfig', file]);
    expect(r.code).toBe(2);
    const line = errorLine(r);
    expect(line).toContain('"gke_my-project_europe-west1-b_prod"');
    expect(line).toContain('--source-name');
    await expectNothingCreated();
    const ok = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-kubeconfig', file, '--source-name', 'prod', '--dry-run']);
    expect(ok.stderr).not.toContain('error');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('[target cluster1] apply ServiceAccountImport multicluster-service-account/prod');
    await expectNothingCreated();
  });

  it('an invalid --target-name is a usage error', async () => {
    const r = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--target-name', 'Not_Valid']);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/invalid --target-name "Not_Valid"/);
  });

  it('a missing kubeconfig file is a usage error naming the file', async () => {
    const missing = path.join(scratch.dir, 'does-not-exist.kubeconfig');
    const r = await kubemcsa(['bootstrap', '--target-kubeconfig', missing, '--source-context', 'cluster2']);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toContain(`kubeconfig file ${missing} given with --target-kubeconfig does not exist`);
    await expectNothingCreated();
  });

  it('an unreachable source fails the pre-flight, naming the cluster and its URL', async () => {
    const port = await freePort();
    const file = scratch.write('closed.kubeconfig', kubeconfigFor('closed', { server: `https://127.0.0.1:${port}` }));
    const r = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-kubeconfig', file]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(new RegExp(`source cluster closed \\(context ctx\\) at https://127.0.0.1:${port} is unreachable: .*ECONNREFUSED`));
    await expectNothingCreated();
  });

  it('a source with insecure-skip-tls-verify and no CA is refused before anything is written', async () => {
    const insecure = kubeconfigFor('insecure', { 'insecure-skip-tls-verify': true });
    delete (insecure.clusters[0]!.cluster as Record<string, unknown>)['certificate-authority-data'];
    const file = scratch.write('insecure.kubeconfig', insecure);
    const r = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-kubeconfig', file]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/source cluster insecure .*insecure-skip-tls-verify and has no certificate authority/);
    await expectNothingCreated();
  });

  it('a source identity without the needed permissions, or with refused credentials, fails the pre-flight', async () => {
    const ns = await createTestNamespace('cluster2', 'cli-limited');
    try {
      expect((await kubectl(kc2(), ['create', 'serviceaccount', 'limited', '-n', ns.name])).code).toBe(0);
      const token = (await kubectl(kc2(), ['create', 'token', 'limited', '-n', ns.name, '--duration', '10m'])).stdout.trim();
      const limited = scratch.write('limited.kubeconfig', kubeconfigFor('limited', {}, { token }));
      const r = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-kubeconfig', limited]);
      expect(r.code).toBe(1);
      expect(errorLine(r)).toMatch(/the kubeconfig's identity may not get namespaces, create validatingadmissionpolicies\.admissionregistration\.k8s\.io, .* in source cluster limited \(context ctx\)/);
      expect(r.stderr).not.toContain(token);
      await expectNothingCreated();
      // Unbootstrap of a registration with that identity on the source side: refused before
      // anything is deleted on either side (the target's registration stays).
      expect((await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-name', 'limited'])).code).toBe(0);
      const registered = [await snapshot(kc1()), await snapshot(kc2())];
      try {
        const u = await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-kubeconfig', limited, '--wait']);
        expect(u.code).toBe(1);
        expect(errorLine(u)).toMatch(/cannot list (Cluster)?RoleBinding in source cluster limited \(context ctx\): forbidden/);
        expect(u.stderr).not.toMatch(/: deleted$/m);
        expect([await snapshot(kc1()), await snapshot(kc2())]).toEqual(registered);
        // Allowed to list the bindings (and the grants' Roles) but to delete nothing: the access reviews name what is missing.
        const role = `${ns.name}-list-bindings`;
        expect((await kubectl(kc2(), ['create', 'clusterrole', role, '--verb=list', '--resource=clusterrolebindings,rolebindings,roles'])).code).toBe(0);
        expect((await kubectl(kc2(), ['create', 'clusterrolebinding', role, `--clusterrole=${role}`, `--serviceaccount=${ns.name}:limited`])).code).toBe(0);
        try {
          const v = await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-kubeconfig', limited]);
          expect(v.code).toBe(1);
          expect(errorLine(v)).toMatch(/the kubeconfig's identity may not get namespaces, delete clusterrolebindings\.rbac\.authorization\.k8s\.io, .* in source cluster limited \(context ctx\)/);
          expect(v.stderr).not.toMatch(/: deleted$/m);
          expect([await snapshot(kc1()), await snapshot(kc2())]).toEqual(registered);
        } finally {
          await kubectl(kc2(), ['delete', 'clusterrolebinding', role, '--ignore-not-found']);
          await kubectl(kc2(), ['delete', 'clusterrole', role, '--ignore-not-found']);
        }
      } finally {
        expect((await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-name', 'limited', '--wait'])).code).toBe(0);
      }
      await expectNothingCreated();
      const bogus = scratch.write('bogus.kubeconfig', kubeconfigFor('bogus', {}, { token: 'not-a-valid-token' }));
      const b = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-kubeconfig', bogus]);
      expect(b.code).toBe(1);
      expect(errorLine(b)).toMatch(/source cluster bogus \(context ctx\) at https:\S+ refused the kubeconfig's credentials: unauthorized/);
      await expectNothingCreated();
    } finally {
      await ns.delete();
    }
  });

  it('a --source-namespaces namespace missing in the source fails the pre-flight', async () => {
    const r = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-namespaces', 'default,no-such-ns']);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/namespace no-such-ns given with --source-namespaces does not exist in source cluster cluster2/);
    await expectNothingCreated();
  });

  it('a target without the CRD fails the pre-flight; nothing is created in either cluster', async () => {
    thirdDir = mkdtempSync(path.join(os.tmpdir(), 'cli-errors-cluster3-'));
    third = await Cluster.start({ name: 'cluster3', dir: thirdDir, bins: resolveBinaries(), controllerManager: false });
    const kc3 = third.info.kubeconfigPath;
    const before3 = await snapshot(kc3);
    const r = await kubemcsa(['bootstrap', '--target-kubeconfig', kc3, '--source-context', 'cluster2']);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/target cluster cluster3 \(context cluster3\) does not serve the ServiceAccountImport API/);
    expect(await snapshot(kc3)).toEqual(before3);
    await expectNothingCreated();
  });

  it('export of a missing ServiceAccount and kubeconfig of a missing import fail naming the object and cluster', async () => {
    const e = await kubemcsa(['export', 'no-such-sa', '-n', 'default', '--context', 'cluster2']);
    expect(e.code).toBe(1);
    expect(errorLine(e)).toBe('kubemcsa: error: ServiceAccount default/no-such-sa not found in cluster cluster2 (context cluster2)');
    expect(e.stdout).toBe('');
    const k = await kubemcsa(['kubeconfig', 'no-such-import', '-n', 'default', '--context', 'cluster1']);
    expect(k.code).toBe(1);
    expect(errorLine(k)).toBe('kubemcsa: error: ServiceAccountImport default/no-such-import not found in cluster cluster1 (context cluster1)');
  });

  it('usage errors from the parser exit 2 with one line', async () => {
    for (const args of [['bootstrap', '--no-such-flag'], ['export'], ['status', '-o', 'xml']]) {
      const r = await kubemcsa(args);
      expect(r.code).toBe(2);
      errorLine(r);
    }
  });
});
