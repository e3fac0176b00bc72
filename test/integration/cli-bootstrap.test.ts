// kubemcsa bootstrap / unbootstrap / kubeconfig / status against two real clusters:
// cluster1 (target) ← cluster2 (source).
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse } from 'yaml';
import { API_GROUP, API_VERSION, IMPORT_PLURAL, INSTALL_NAMESPACE, IMPORT_LABEL } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { credentialFromSecretData, SecretAnnotations, mintFingerprint } from '../../src/secret.js';
import { clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { allKubeconfig, canIList, ensureCrd, errorLine, keys, kubemcsa, listStatus, REPO, scratchDir, snapshot, tokenKubeConfig } from './cli-support.js';

jest.setTimeout(180_000);

const TARGET = 'cluster1';
const SOURCE = 'cluster2';
const CLUSTER_FLAGS = ['--target-context', TARGET, '--source-context', SOURCE];
const IMPORTER = `system:serviceaccount:${INSTALL_NAMESPACE}:${TARGET}`;
const SECRET = secretNameForImport(SOURCE);

const kcOf = (c: string) => clusterInfo(c).kubeconfigPath;

async function readSecret(): Promise<{ metadata: { annotations: Record<string, string>; ownerReferences: Array<{ uid: string; kind: string; controller: boolean }>; labels: Record<string, string> }; data: Record<string, string> }> {
  const r = await kubectl(kcOf(TARGET), ['get', 'secret', '-n', INSTALL_NAMESPACE, SECRET, '-o', 'json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

async function unbootstrapAndWait(): Promise<void> {
  const r = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--wait']);
  if (r.code !== 0) throw new Error(`unbootstrap failed: ${r.stderr}`);
}

describe('kubemcsa bootstrap cluster1 ← cluster2', () => {
  const scratch = scratchDir('cli-bootstrap');
  let scoped: { name: string; delete: () => Promise<void> };
  let targetInstalled = false;

  beforeAll(async () => {
    await ensureCrd(TARGET);
    // Leftovers of an interrupted run would make "exactly these objects" meaningless.
    await unbootstrapAndWait();
    // An installation (manifests/install.yaml, applied by other suites) may own the install
    // namespace of the target already; bootstrap then creates no Namespace there.
    targetInstalled = (await kubectl(kcOf(TARGET), ['get', 'namespace', INSTALL_NAMESPACE, '--ignore-not-found', '-o', 'name'])).stdout.trim() !== '';
    scoped = await createTestNamespace(SOURCE, 'cli-scoped');
  });

  afterAll(async () => {
    await unbootstrapAndWait();
    await scoped.delete();
    scratch.cleanup();
  });

  it('--dry-run runs the pre-flight, prints the plan and creates nothing', async () => {
    const before = [await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))];
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`[source ${SOURCE}] apply ServiceAccount ${INSTALL_NAMESPACE}/${TARGET}`);
    expect(r.stdout).toContain(`[target ${TARGET}] apply ServiceAccountImport ${INSTALL_NAMESPACE}/${SOURCE}`);
    expect(r.stderr).toContain('pre-flight');
    expect(r.stderr).toContain('dry run: nothing was changed');
    // The harness's API servers listen on loopback: bootstrap warns that a pod of the target
    // could not reach such a URL, and says how to give one it can.
    expect(r.stderr).toMatch(/^warning: source cluster .*'s server URL https:\/\/127\.0\.0\.1:\d+ is a loopback address: .*--source-server/m);
    // Before the first bootstrap, -o yaml prints the namespaces bootstrap would create.
    const objects = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--dry-run', '-o', 'json']);
    const first = JSON.parse(objects.stdout) as { source: { objects: { kind: string }[] }; target: { objects: { kind: string }[] } };
    expect(first.source.objects[0]!.kind).toBe('Namespace');
    expect(first.target.objects.map((o) => o.kind)).toEqual([...(targetInstalled ? [] : ['Namespace']), 'ServiceAccountImport']);
    const routable = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--dry-run', '--source-server', 'https://10.0.0.1:6443']);
    expect(routable.code).toBe(0);
    expect(routable.stderr).not.toContain('loopback');
    expect([await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))]).toEqual(before);
    expect(keys(before[0]!)).toEqual([]);
    expect(keys(before[1]!)).toEqual([]);
  });

  it('creates exactly the importer objects in the source and the registration in the target', async () => {
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    // One progress line per step, never a token.
    expect(r.stderr).toMatch(/ClusterRole multicluster-service-account-importer: created/);
    expect(r.stderr).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(r.stdout).toBe('');

    expect(keys(await snapshot(kcOf(SOURCE)))).toEqual([
      'ClusterRole//multicluster-service-account-importer',
      `ClusterRoleBinding//multicluster-service-account-importer-${TARGET}`,
      `Namespace//${INSTALL_NAMESPACE}`,
      `Role/${INSTALL_NAMESPACE}/multicluster-service-account-importer-self-${TARGET}`,
      `RoleBinding/${INSTALL_NAMESPACE}/multicluster-service-account-importer-self-${TARGET}`,
      `ServiceAccount/${INSTALL_NAMESPACE}/${TARGET}`,
    ]);
    expect(keys(await snapshot(kcOf(TARGET)))).toEqual([...(targetInstalled ? [] : [`Namespace//${INSTALL_NAMESPACE}`]), `Secret/${INSTALL_NAMESPACE}/${SECRET}`, `ServiceAccountImport/${INSTALL_NAMESPACE}/${SOURCE}`]);

    const sai = JSON.parse((await kubectl(kcOf(TARGET), ['get', 'sai', '-n', INSTALL_NAMESPACE, SOURCE, '-o', 'json'])).stdout);
    expect(sai.spec).toEqual({ clusterName: SOURCE, namespace: INSTALL_NAMESPACE, name: TARGET, expirationSeconds: 86_400 });
    const sa = JSON.parse((await kubectl(kcOf(SOURCE), ['get', 'sa', '-n', INSTALL_NAMESPACE, TARGET, '-o', 'json'])).stdout);

    const secret = await readSecret();
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'config', 'namespace', 'server', 'token']);
    expect(secret.metadata.labels[IMPORT_LABEL]).toBe(SOURCE);
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'ServiceAccountImport', uid: sai.metadata.uid, controller: true })]);
    const cred = credentialFromSecretData(secret.data)!;
    expect(cred.server).toBe(clusterInfo(SOURCE).server);
    expect(cred.caPem).toBe(clusterInfo(SOURCE).caPem);
    expect(cred.namespace).toBe(INSTALL_NAMESPACE);
    const a = secret.metadata.annotations;
    expect(a[SecretAnnotations.remoteUid]).toBe(sa.metadata.uid);
    expect(a[SecretAnnotations.fingerprint]).toBe(mintFingerprint({ spec: sai.spec, server: cred.server, caPem: cred.caPem }));
    // Local receive time plus the lifetime the source granted (--registration-duration, default 24h).
    const issued = Date.parse(a[SecretAnnotations.issued]!);
    expect(Math.abs(Date.now() - issued)).toBeLessThan(120_000);
    expect(Date.parse(a[SecretAnnotations.expiration]!) - issued).toBe(86_400_000);
  });

  it("the registration's token authenticates to the source as the importer: ServiceAccounts yes, Secrets no", async () => {
    const cred = credentialFromSecretData((await readSecret()).data)!;
    const kc = tokenKubeConfig(cred.server, cred.caPem, cred.token);
    expect(await listStatus(kc, 'serviceaccounts')).toBe(200);
    expect(await listStatus(kc, 'secrets')).toBe(403);
  });

  it('a second bootstrap changes nothing: same objects, same resourceVersions, same token', async () => {
    const before = [await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))];
    const token = (await readSecret()).data.token;
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/: (created|configured)$/m);
    expect(r.stderr).toMatch(/Secret .*: unchanged/);
    expect([await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))]).toEqual(before);
    expect((await readSecret()).data.token).toBe(token);
  });

  it('--dry-run -o yaml prints exactly the objects bootstrap applies, by cluster: applied with kubectl, they change nothing', async () => {
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--dry-run', '-o', 'yaml']);
    expect({ code: r.code, error: errorLineOrNone(r) }).toEqual({ code: 0, error: undefined });
    // One commented section per cluster, then the Secret it does not print (it holds a token).
    const sections = r.stdout.split(/^(?=# (?:source|target) cluster )/m).slice(1);
    expect(sections.map((s) => s.split('\n')[0])).toEqual([
      expect.stringMatching(new RegExp(`^# source cluster ${SOURCE} \\(context ${SOURCE}\\): apply these to the source$`)),
      expect.stringMatching(new RegExp(`^# target cluster ${TARGET} \\(context ${TARGET}\\): apply these to the target$`)),
    ]);
    expect(r.stdout).toMatch(new RegExp(`^# Not printed: Secret ${INSTALL_NAMESPACE}/${SECRET} in the target: it holds a token`, 'm'));
    expect(r.stdout).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    const docs = (section: string) => section.split(/^---$/m).slice(1).map((d) => parse(d) as { kind: string; metadata: { name: string; namespace?: string } });
    const refs = (section: string) => docs(section).map((d) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`).sort();
    // The source gets the importers' admission policy too (cluster-scoped, shared by every target).
    const POLICY = 'multicluster-service-account-importers';
    const policies = [`ValidatingAdmissionPolicy//${POLICY}`, `ValidatingAdmissionPolicyBinding//${POLICY}`];
    // The namespaces exist now (bootstrap ran): bootstrap would leave them alone, so they are not printed.
    expect(refs(sections[0]!)).toEqual([...keys(await snapshot(kcOf(SOURCE))).filter((k) => !k.startsWith('Namespace/')), ...policies].sort());
    expect(refs(sections[1]!)).toEqual([`ServiceAccountImport/${INSTALL_NAMESPACE}/${SOURCE}`]);
    expect(r.stdout).toMatch(new RegExp(`^# Not printed: Namespace ${INSTALL_NAMESPACE} in the source: it exists`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^# Not printed: Namespace ${INSTALL_NAMESPACE} in the target: it exists`, 'm'));
    const policyVersions = async () => (await kubectl(kcOf(SOURCE), ['get', `validatingadmissionpolicy/${POLICY}`, `validatingadmissionpolicybinding/${POLICY}`, '-o', 'jsonpath={.items[*].metadata.resourceVersion}'])).stdout;
    const policiesBefore = await policyVersions();
    expect(policiesBefore.split(' ')).toHaveLength(2);
    const before = [await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))];
    for (const [cluster, section] of [[SOURCE, sections[0]!], [TARGET, sections[1]!]] as const) {
      const applied = await kubectl(kcOf(cluster), ['apply', '--server-side', '--field-manager=kubemcsa', '-f', '-'], section);
      expect({ cluster, code: applied.code, stderr: applied.stderr }).toEqual({ cluster, code: 0, stderr: '' });
    }
    expect([await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))]).toEqual(before);
    expect(await policyVersions()).toBe(policiesBefore);
    // JSON: the same objects, one document.
    const j = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--dry-run', '-o', 'json']);
    const doc = JSON.parse(j.stdout) as { source: { cluster: string; objects: unknown[] }; target: { cluster: string; objects: unknown[] }; notPrinted: { object: string }[] };
    expect(doc.source.objects).toEqual(docs(sections[0]!));
    expect(doc.target.objects).toEqual(docs(sections[1]!));
    expect(doc.notPrinted.map((n) => n.object)).toEqual([`Namespace ${INSTALL_NAMESPACE}`, `Namespace ${INSTALL_NAMESPACE}`, `Secret ${INSTALL_NAMESPACE}/${SECRET}`]);
    // -o is for dry runs only.
    const real = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '-o', 'yaml']);
    expect({ code: real.code, error: errorLine(real) }).toEqual({ code: 2, error: expect.stringContaining('--output needs --dry-run') });
  });

  it('re-mints when the Secret was deleted', async () => {
    expect((await kubectl(kcOf(TARGET), ['delete', 'secret', '-n', INSTALL_NAMESPACE, SECRET])).code).toBe(0);
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/token minted .*\(the Secret does not exist\)/);
    expect(credentialFromSecretData((await readSecret()).data)).toBeDefined();
  });

  it('grants the importer exactly get/list/watch serviceaccounts (cluster-wide) and a token for itself only', async () => {
    expect(await canIList(kcOf(SOURCE), IMPORTER, 'default')).toEqual(['serviceaccounts [] [get list watch]']);
    expect(await canIList(kcOf(SOURCE), IMPORTER, INSTALL_NAMESPACE)).toEqual([
      'serviceaccounts [] [get list watch]',
      `serviceaccounts [${TARGET}] [get]`,
      `serviceaccounts/token [${TARGET}] [create]`,
    ]);
  });

  it('--registration-duration sets the registration\'s lifetime and re-mints (the spec changed), keeping what other tools added to the Secret', async () => {
    // A backup tool labels the registration Secret, a reloader annotates it: kubemcsa's
    // server-side apply owns only its own fields, so a re-mint keeps theirs.
    const foreign = ['backup.example.com/include=true', 'reloader.example.com/match=true'];
    expect((await kubectl(kcOf(TARGET), ['label', 'secret', '-n', INSTALL_NAMESPACE, SECRET, foreign[0]!])).code).toBe(0);
    expect((await kubectl(kcOf(TARGET), ['annotate', 'secret', '-n', INSTALL_NAMESPACE, SECRET, foreign[1]!])).code).toBe(0);
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--registration-duration', '2h']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/token minted .*\(the source server, CA or spec changed\)/);
    const sai = JSON.parse((await kubectl(kcOf(TARGET), ['get', 'sai', '-n', INSTALL_NAMESPACE, SOURCE, '-o', 'json'])).stdout);
    expect(sai.spec.expirationSeconds).toBe(7200);
    const a = (await readSecret()).metadata.annotations;
    expect(Date.parse(a[SecretAnnotations.expiration]!) - Date.parse(a[SecretAnnotations.issued]!)).toBe(7_200_000);
    const kept = (await readSecret()).metadata;
    expect(kept.labels).toMatchObject({ 'backup.example.com/include': 'true' });
    expect(kept.annotations).toMatchObject({ 'reloader.example.com/match': 'true' });
    const back = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(back.code).toBe(0);
    expect(JSON.parse((await kubectl(kcOf(TARGET), ['get', 'sai', '-n', INSTALL_NAMESPACE, SOURCE, '-o', 'json'])).stdout).spec.expirationSeconds).toBe(86_400);
  });

  it('with --source-namespaces, reads only those namespaces and its own (plus its own token) and drops the cluster-wide binding', async () => {
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS, '--source-namespaces', scoped.name]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`ClusterRoleBinding multicluster-service-account-importer-${TARGET}: deleted`));
    expect(await canIList(kcOf(SOURCE), IMPORTER, scoped.name)).toEqual(['serviceaccounts [] [get list watch]']);
    expect(await canIList(kcOf(SOURCE), IMPORTER, 'default')).toEqual([]);
    // The install namespace too: the controller watches the importer's own ServiceAccount (its grants).
    expect(await canIList(kcOf(SOURCE), IMPORTER, INSTALL_NAMESPACE)).toEqual([
      'serviceaccounts [] [get list watch]',
      `serviceaccounts [${TARGET}] [get]`,
      `serviceaccounts/token [${TARGET}] [create]`,
    ]);
    expect(keys(await snapshot(kcOf(SOURCE)))).toEqual(
      expect.arrayContaining([`RoleBinding/${scoped.name}/multicluster-service-account-importer-${TARGET}`, `RoleBinding/${INSTALL_NAMESPACE}/multicluster-service-account-importer-${TARGET}`]),
    );
    // The registration keeps working: its token may still mint its own token.
    const cred = credentialFromSecretData((await readSecret()).data)!;
    expect(await listStatus(tokenKubeConfig(cred.server, cred.caPem, cred.token), 'serviceaccounts')).toBe(403);
    // Back to cluster-wide: the per-namespace binding goes.
    const back = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(back.code).toBe(0);
    expect(back.stderr).toMatch(new RegExp(`RoleBinding ${scoped.name}/multicluster-service-account-importer-${TARGET}: deleted`));
    expect(await canIList(kcOf(SOURCE), IMPORTER, 'default')).toEqual(['serviceaccounts [] [get list watch]']);
  });

  it('kubemcsa kubeconfig prints a working kubeconfig with the current token inline', async () => {
    const r = await kubemcsa(['kubeconfig', SOURCE, '-n', INSTALL_NAMESPACE, '--context', TARGET]);
    expect(r.code).toBe(0);
    const cfg = parse(r.stdout);
    expect(cfg['current-context']).toBe(SOURCE);
    expect(cfg.users[0].user.token).toBe(credentialFromSecretData((await readSecret()).data)!.token);
    const file = scratch.write('registration.kubeconfig', r.stdout);
    const who = await kubectl(file, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(who.stdout).toBe(IMPORTER);
    expect((await kubectl(file, ['get', 'serviceaccounts', '-n', 'default'])).code).toBe(0);
  });

  it('kubemcsa status lists the registration', async () => {
    const r = await kubemcsa(['status', '--context', TARGET, '-o', 'json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as { registrations: Array<{ name: string; remote: string }>; imports: Array<{ namespace: string; name: string }> };
    expect(s.registrations).toEqual([expect.objectContaining({ name: SOURCE, remote: `${INSTALL_NAMESPACE}/${TARGET}` })]);
    expect(s.imports).toContainEqual(expect.objectContaining({ namespace: INSTALL_NAMESPACE, name: SOURCE }));
    const table = await kubemcsa(['status', '--context', TARGET]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${SOURCE} +${INSTALL_NAMESPACE}/${TARGET} `, 'm'));
  });

  it('--wait reacts to the Ready condition within 1 s of it being written (a watch, not a polling loop)', async () => {
    // No controller runs in this suite: the test writes the registration's status itself, at a
    // moment it chooses, and measures when kubemcsa reports it.
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'cli', 'kubemcsa.ts'), 'bootstrap', ...CLUSTER_FLAGS, '--wait', '--timeout', '90s'], {
      cwd: REPO,
      env: { ...process.env, KUBECONFIG: allKubeconfig() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let readyAt: number | undefined;
    cli.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (readyAt === undefined && new RegExp(`ServiceAccountImport ${INSTALL_NAMESPACE}/${SOURCE}: Ready`).test(stderr)) readyAt = performance.now();
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    try {
      await waitFor('kubemcsa to wait for the registration', async () => stderr.includes('to be Ready'), 60_000, 50);
      expect(readyAt).toBeUndefined();
      const kc = new KubeConfig();
      kc.loadFromFile(kcOf(TARGET));
      const api = kc.makeApiClient(CustomObjectsApi);
      const sai = (await api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL, name: SOURCE })) as { metadata: { generation: number } };
      const expiration = (await readSecret()).metadata.annotations[SecretAnnotations.expiration]!;
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const status = {
        observedGeneration: sai.metadata.generation,
        expirationTimestamp: expiration.replace(/\.\d+Z$/, 'Z'),
        conditions: [{ type: 'Ready', status: 'True', reason: 'TokenIssued', message: 'written by the test', lastTransitionTime: now, observedGeneration: sai.metadata.generation }],
      };
      await api.patchNamespacedCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION, namespace: INSTALL_NAMESPACE, plural: IMPORT_PLURAL, name: SOURCE, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const writtenAt = performance.now();
      expect(await exited).toBe(0);
      expect(readyAt).toBeDefined();
      const reactionMs = Math.max(0, readyAt! - writtenAt);
      console.log(`kubemcsa --wait reported Ready ${reactionMs.toFixed(0)} ms after the status was written`);
      expect(reactionMs).toBeLessThan(1_000);
    } finally {
      if (cli.exitCode === null) cli.kill('SIGKILL');
      await exited;
    }
  });

  it('unbootstrap revokes the token (401) and leaves no bootstrap object on either side; a re-run is harmless', async () => {
    const cred = credentialFromSecretData((await readSecret()).data)!;
    const tokenKc = tokenKubeConfig(cred.server, cred.caPem, cred.token);
    // Accepted just now, so the source's 10 s token-authentication cache holds it; --wait outlasts that.
    expect(await listStatus(tokenKc, 'serviceaccounts')).toBe(200);
    // A dry run first: it reads both clusters, changes nothing, and reports exactly what the real run then deletes.
    const before = [await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))];
    const dry = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--dry-run']);
    expect({ code: dry.code, error: errorLineOrNone(dry) }).toEqual({ code: 0, error: undefined });
    expect(dry.stderr).toMatch(/^dry run: nothing was changed$/m);
    expect([await snapshot(kcOf(TARGET)), await snapshot(kcOf(SOURCE))]).toEqual(before);
    const gone = (out: string, verb: string) => [...out.matchAll(new RegExp(`^(\\[\\w+ \\S+\\] .+): ${verb}(?: \\(grant\\))?$`, 'gm'))].map((m) => m[1]!).sort();
    const wouldDelete = gone(dry.stderr, 'would be deleted');
    expect(wouldDelete).toEqual(expect.arrayContaining([`[target ${TARGET}] ServiceAccountImport ${INSTALL_NAMESPACE}/${SOURCE}`, `[source ${SOURCE}] ServiceAccount ${INSTALL_NAMESPACE}/${TARGET}`]));
    const both = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--dry-run', '--wait']);
    expect({ code: both.code, error: errorLine(both) }).toEqual({ code: 2, error: expect.stringContaining('--wait and --dry-run exclude each other') });

    const r = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS, '--wait']);
    expect(r.code).toBe(0);
    // The registration's Secret: the real run may find it already gone (garbage collection follows
    // the registration's deletion at once); the dry run, where nothing is deleted, lists it.
    const secretLine = `[target ${TARGET}] Secret ${INSTALL_NAMESPACE}/${SECRET}`;
    expect(wouldDelete).toContain(secretLine);
    expect(gone(r.stderr, 'deleted').filter((l) => l !== secretLine)).toEqual(wouldDelete.filter((l) => l !== secretLine));
    expect(r.stderr).toMatch(/registration token: refused \(HTTP 401\)/);
    expect(r.stdout + r.stderr).not.toContain(cred.token);
    expect(await listStatus(tokenKc, 'serviceaccounts')).toBe(401);
    expect(keys(await snapshot(kcOf(TARGET)))).toEqual([]);
    expect(keys(await snapshot(kcOf(SOURCE)))).toEqual([]);
    const again = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS]);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/: deleted$/m);
  });

  it('bootstrap right after unbootstrap works (a namespace still terminating is waited for)', async () => {
    const r = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(r.code).toBe(0);
    await waitFor('registration Secret', async () => (await kubectl(kcOf(TARGET), ['get', 'secret', '-n', INSTALL_NAMESPACE, SECRET])).code === 0, 10_000);
    const quick = await kubemcsa(['unbootstrap', ...CLUSTER_FLAGS]);
    expect(quick.code).toBe(0);
    const re = await kubemcsa(['bootstrap', ...CLUSTER_FLAGS]);
    expect(re.code).toBe(0);
    expect(errorLineOrNone(re)).toBeUndefined();
  });
});

function errorLineOrNone(r: { stderr: string; stdout: string; code: number }): string | undefined {
  return r.stderr.includes('kubemcsa: error:') ? errorLine(r) : undefined;
}
