// Several registrations at once: two sources into one target and one source into two targets
// (distinct names over the two harness clusters), plus the reverse direction; unbootstrap of one
// leaves the others working, and shared objects go only with the last user.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { credentialFromSecretData } from '../../src/secret.js';
import { clusterInfo, kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { ensureCrd, keys, kubemcsa, listStatus, snapshot, tokenKubeConfig } from './cli-support.js';

jest.setTimeout(300_000);

interface Registration {
  target: string;
  targetName: string;
  source: string;
  sourceName: string;
}

// cluster2 is the source of two targets (t-a, t-b), both living in cluster1, which thus holds two
// sources (s-a, s-b); and cluster1 is itself a source of cluster2.
const A: Registration = { target: 'cluster1', targetName: 't-a', source: 'cluster2', sourceName: 's-a' };
const B: Registration = { target: 'cluster1', targetName: 't-b', source: 'cluster2', sourceName: 's-b' };
const C: Registration = { target: 'cluster2', targetName: 'cluster2', source: 'cluster1', sourceName: 'cluster1' };

const flags = (r: Registration) => ['--target-context', r.target, '--target-name', r.targetName, '--source-context', r.source, '--source-name', r.sourceName];
const kcOf = (c: string) => clusterInfo(c).kubeconfigPath;

async function tokenStatus(r: Registration, token: { server: string; caPem: string; token: string }): Promise<number> {
  return listStatus(tokenKubeConfig(token.server, token.caPem, token.token), 'serviceaccounts');
}

async function credential(r: Registration) {
  const got = await kubectl(kcOf(r.target), ['get', 'secret', '-n', INSTALL_NAMESPACE, secretNameForImport(r.sourceName), '-o', 'json']);
  expect(got.code).toBe(0);
  return credentialFromSecretData((JSON.parse(got.stdout) as { data: Record<string, string> }).data)!;
}

async function run(cmd: 'bootstrap' | 'unbootstrap', r: Registration, extra: string[] = []) {
  const out = await kubemcsa([cmd, ...flags(r), ...extra]);
  if (out.code !== 0) throw new Error(`${cmd} ${flags(r).join(' ')} failed: ${out.stderr}`);
  return out;
}

describe('kubemcsa with several registrations', () => {
  beforeAll(async () => {
    await ensureCrd('cluster1');
    await ensureCrd('cluster2');
    for (const r of [A, B, C]) await run('unbootstrap', r, ['--wait']);
  });

  afterAll(async () => {
    for (const r of [A, B, C]) await run('unbootstrap', r, ['--wait']);
  });

  it('registers two sources in one target and one source in two targets, each with a working token', async () => {
    for (const r of [A, B, C]) await run('bootstrap', r);
    const c1 = keys(await snapshot(kcOf('cluster1')));
    const c2 = keys(await snapshot(kcOf('cluster2')));
    // cluster1: the registrations s-a and s-b, and the importer of cluster2.
    expect(c1).toEqual(
      expect.arrayContaining([
        `ServiceAccountImport/${INSTALL_NAMESPACE}/s-a`,
        `ServiceAccountImport/${INSTALL_NAMESPACE}/s-b`,
        `ServiceAccount/${INSTALL_NAMESPACE}/cluster2`,
        'ClusterRoleBinding//multicluster-service-account-importer-cluster2',
      ]),
    );
    // cluster2: importers t-a and t-b sharing one ClusterRole, and the registration of cluster1.
    expect(c2.filter((k) => k.startsWith('ClusterRole'))).toEqual([
      'ClusterRole//multicluster-service-account-importer',
      'ClusterRoleBinding//multicluster-service-account-importer-t-a',
      'ClusterRoleBinding//multicluster-service-account-importer-t-b',
    ]);
    expect(c2).toEqual(expect.arrayContaining([`ServiceAccount/${INSTALL_NAMESPACE}/t-a`, `ServiceAccount/${INSTALL_NAMESPACE}/t-b`, `ServiceAccountImport/${INSTALL_NAMESPACE}/cluster1`]));
    for (const r of [A, B, C]) expect(await tokenStatus(r, await credential(r))).toBe(200);
  });

  it('a second round changes nothing anywhere', async () => {
    const before = [await snapshot(kcOf('cluster1')), await snapshot(kcOf('cluster2'))];
    for (const r of [A, B, C]) await run('bootstrap', r);
    expect([await snapshot(kcOf('cluster1')), await snapshot(kcOf('cluster2'))]).toEqual(before);
  });

  it('unbootstrap of one registration leaves the others working and keeps shared objects', async () => {
    const tokens = { a: await credential(A), b: await credential(B), c: await credential(C) };
    const out = await run('unbootstrap', A);
    expect(out.stderr).toMatch(/ClusterRole multicluster-service-account-importer: kept/);
    expect(out.stderr).toMatch(/Namespace multicluster-service-account: kept/);
    // Without --wait the token is refused once the source's 10 s token-authentication cache lets go.
    await waitFor('the source to refuse the token of t-a', async () => (await tokenStatus(A, tokens.a)) === 401, 20_000, 250);
    expect(await tokenStatus(B, tokens.b)).toBe(200);
    expect(await tokenStatus(C, tokens.c)).toBe(200);
    const c2 = keys(await snapshot(kcOf('cluster2')));
    expect(c2).not.toContain(`ServiceAccount/${INSTALL_NAMESPACE}/t-a`);
    expect(c2).toContain(`ServiceAccount/${INSTALL_NAMESPACE}/t-b`);

    // Without t-b the ClusterRole goes, but cluster2's namespace still holds the registration of cluster1.
    const outB = await run('unbootstrap', B);
    expect(outB.stderr).toMatch(/\[source s-b\] ClusterRole multicluster-service-account-importer: deleted/);
    expect(outB.stderr).toMatch(/\[source s-b\] Namespace multicluster-service-account: kept \(still holds .*ServiceAccountImport cluster1/);
    expect(await tokenStatus(C, tokens.c)).toBe(200);

    // The token of C was just accepted, so the source's cache holds it: --wait outlasts that.
    const outC = await run('unbootstrap', C, ['--wait']);
    expect(outC.stderr).toMatch(/\[source cluster1\] registration token: refused \(HTTP 401\)/);
    expect(await tokenStatus(C, tokens.c)).toBe(401);
    expect(keys(await snapshot(kcOf('cluster1')))).toEqual([]);
    expect(keys(await snapshot(kcOf('cluster2')))).toEqual([]);
  });
});
