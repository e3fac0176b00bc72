// Federated imports on real API servers (ADR 0022): `kubemcsa federate` makes source cluster2
// trust target cluster1's ServiceAccount issuer through a JWT authenticator in cluster2's
// --authentication-config; a token minted exactly as the kubelet mints a pod's projected token
// (TokenRequest bound to the pod, the source's audience, 3600 s) is then a mapped user at the
// source, and the files of a federated mount work with the config library and kubectl. A third
// cluster's tokens, unbound tokens and other audiences are refused; RBAC and unfederate revoke; a
// rotation of a target's signing key is followed once the source is refreshed; no Secret is
// created anywhere. Timings are measured and printed.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthenticationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { resolveBinaries } from '../harness/binaries.js';
import { Cluster, resetAuthenticationConfig, type ClusterInfo } from '../harness/cluster.js';
import { adminKubeConfig, clusterInfo, kubectl, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { FEDERATED_SOURCE_LABEL, INSTALL_NAMESPACE } from '../../src/constants.js';
import { namedServiceAccountImportConfigAndNamespace } from '../../src/config/index.js';
import { federatedGroups, federatedUsername } from '../../src/federation/identity.js';
import { buildFederatedConfigMap } from '../../src/federation/imports.js';
import { ANONYMOUS_DISCOVERY_BINDING } from '../../src/federation/record.js';
import { httpStatusOf } from '../../src/describe-error.js';
import { anonymousGet } from '../../streams/issuer-discovery.js';
import { allKubeconfig, kubemcsa, tokenKubeConfig } from './cli-support.js';

jest.setTimeout(300_000);

const T = 'cluster1';
const S = 'cluster2';
const AUDIENCE = `multicluster.admiralty.io/${S}`;
const RECORD = `federated-${S}`;
/** The reload (file watch, then the new authenticator's health check polled every 10 s) plus the 10 s token cache. */
const RELOAD_DEADLINE_MS = 120_000;
const RBAC_DEADLINE_MS = 15_000;

type Review = { accepted: true; username: string; groups: string[]; extra: Record<string, string[]> } | { accepted: false; status: number };

/** SelfSubjectReview at `info`'s API server with `token` only. */
async function review(info: ClusterInfo, token: string): Promise<Review> {
  try {
    const r = await tokenKubeConfig(info.server, info.caPem, token).makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    const u = r.status?.userInfo ?? {};
    return { accepted: true, username: u.username ?? '', groups: u.groups ?? [], extra: u.extra ?? {} };
  } catch (e) {
    return { accepted: false, status: httpStatusOf(e) ?? 0 };
  }
}

/** HTTP status of listing pods in `namespace` of `info` with `token`. */
async function listPodsStatus(info: ClusterInfo, namespace: string, token: string): Promise<number> {
  try {
    await tokenKubeConfig(info.server, info.caPem, token).makeApiClient(CoreV1Api).listNamespacedPod({ namespace, limit: 1 });
    return 200;
  } catch (e) {
    return httpStatusOf(e) ?? 0;
  }
}

/** Fails with the run's stderr when it did not exit with `code`. */
function expectExit(r: { code: number; stderr: string }, code: number): void {
  if (r.code !== code) throw new Error(`kubemcsa exited ${r.code}, expected ${code}; stderr:\n${r.stderr}`);
}

/** Waits until `check` holds; returns how long it took. */
async function timeUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await waitFor(what, check, timeoutMs, 250);
  return Date.now() - t0;
}

/** A namespace, ServiceAccount and (Pending: no node) Pod, and a token minted for the pod as the kubelet would. */
async function podWithToken(kc: KubeConfig, namespace: string, opts: { audience?: string; bound?: boolean; createNamespace?: boolean } = {}) {
  const core = kc.makeApiClient(CoreV1Api);
  if (opts.createNamespace) await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'app' } } }).catch((e: unknown) => {
    if (httpStatusOf(e) !== 409) throw e;
  });
  const podName = uniqueName('app');
  const pod = await core.createNamespacedPod({
    namespace,
    body: { metadata: { name: podName }, spec: { serviceAccountName: 'app', automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.invalid/app:1' }] } },
  });
  return { podName, token: await mint(core, namespace, 'app', { podName, podUid: pod.metadata!.uid!, audience: opts.audience ?? AUDIENCE, bound: opts.bound ?? true }) };
}

async function mint(core: CoreV1Api, namespace: string, sa: string, o: { podName: string; podUid: string; audience: string; bound: boolean }): Promise<string> {
  const tr = await core.createNamespacedServiceAccountToken({
    namespace,
    name: sa,
    body: {
      spec: {
        audiences: [o.audience],
        expirationSeconds: 3600,
        ...(o.bound ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: o.podName, uid: o.podUid } } : {}),
      },
    },
  });
  if (!tr.status?.token) throw new Error(`TokenRequest for ServiceAccount ${namespace}/${sa} returned no token`);
  return tr.status.token;
}

/** Every Secret of a cluster, as `namespace/name uid`. */
async function allSecrets(kc: KubeConfig): Promise<Set<string>> {
  const list = await kc.makeApiClient(CoreV1Api).listSecretForAllNamespaces();
  return new Set(list.items.map((s) => `${s.metadata!.namespace}/${s.metadata!.name} ${s.metadata!.uid}`));
}

describe('federated imports: a source trusts the target issuer (kubemcsa federate)', () => {
  const t = clusterInfo(T);
  const s = clusterInfo(S);
  const tKc = adminKubeConfig(T);
  const sKc = adminKubeConfig(S);
  const ns = uniqueName('fed');
  const sourceNs = uniqueName('fed-src');
  let third: Cluster | undefined;
  let thirdDir = '';
  let secretsBefore: { t: Set<string>; s: Set<string> };
  let pod: { podName: string; token: string };
  let federatedAt = 0;
  const probePod = '0-federation-probe';
  const timings: string[] = [];

  beforeAll(async () => {
    if (!s.authenticationConfigPath) throw new Error(`${S} has no authenticationConfigPath: the clusters were started by an older harness (restart the sandbox)`);
    thirdDir = mkdtempSync(path.join(os.tmpdir(), 'federation-cluster3-'));
    third = await Cluster.start({ name: 'cluster3', dir: thirdDir, bins: resolveBinaries(), controllerManager: false });
    await tKc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    await sKc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: sourceNs } } });
    secretsBefore = { t: await allSecrets(tKc), s: await allSecrets(sKc) };
  });

  afterAll(async () => {
    if (timings.length > 0) console.log(`federation timings: ${timings.join('; ')}`);
    resetAuthenticationConfig(s);
    const tCore = tKc.makeApiClient(CoreV1Api);
    await tCore.deleteNamespacedPod({ namespace: INSTALL_NAMESPACE, name: probePod }).catch(() => undefined);
    await tCore.deleteNamespacedConfigMap({ namespace: INSTALL_NAMESPACE, name: RECORD }).catch(() => undefined);
    await tKc.makeApiClient(RbacAuthorizationV1Api).deleteClusterRoleBinding({ name: ANONYMOUS_DISCOVERY_BINDING }).catch(() => undefined);
    await tCore.deleteNamespace({ name: ns }).catch(() => undefined);
    await sKc.makeApiClient(CoreV1Api).deleteNamespace({ name: sourceNs }).catch(() => undefined);
    await sKc.makeApiClient(CoreV1Api).deleteNamespace({ name: ns }).catch(() => undefined);
    await third?.stop();
    if (thirdDir) rmSync(thirdDir, { recursive: true, force: true });
  });

  it('federate checks anonymous discovery, opens it, writes the record and the authenticator; the source then maps a pod token', async () => {
    const refused = await kubemcsa(['federate', '--target-context', T, '--source-context', S]);
    expectExit(refused, 1);
    expect(refused.stderr).toMatch(/refuses anonymous callers \(HTTP 403\).*--allow-anonymous-discovery/);
    const dry = await kubemcsa(['federate', '--target-context', T, '--source-context', S, '--allow-anonymous-discovery', '--authentication-config', s.authenticationConfigPath, '--dry-run']);
    expectExit(dry, 0);
    expect(dry.stderr).toMatch(new RegExp(`would apply ClusterRoleBinding ${ANONYMOUS_DISCOVERY_BINDING}`));
    expect(dry.stderr).toMatch(/would apply ConfigMap/);
    expect(parse(readFileSync(s.authenticationConfigPath, 'utf8'))).toEqual({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AuthenticationConfiguration', jwt: [] });
    await expect(tKc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: INSTALL_NAMESPACE, name: RECORD })).rejects.toMatchObject({ code: 404 });

    const r = await kubemcsa(['federate', '--target-context', T, '--source-context', S, '--allow-anonymous-discovery', '--authentication-config', s.authenticationConfigPath, '-o', 'json']);
    expect(r.stderr).not.toMatch(/eyJ/);
    expectExit(r, 0);
    federatedAt = Date.now();
    expect(r.stderr).toMatch(/warning: --allow-anonymous-discovery/);
    const entry = JSON.parse(r.stdout) as { issuer: { url: string; audiences: string[] } };
    expect(entry.issuer.url).toBe(t.server);
    expect(entry.issuer.audiences).toEqual([AUDIENCE]);
    const file = parse(readFileSync(s.authenticationConfigPath, 'utf8')) as { jwt: unknown[] };
    expect(file.jwt).toEqual([entry]);
    const record = await tKc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: INSTALL_NAMESPACE, name: RECORD });
    expect(record.metadata?.labels?.[FEDERATED_SOURCE_LABEL]).toBe(S);
    expect(record.data).toEqual({ server: s.server, 'ca.crt': s.caPem, audience: AUDIENCE });
    // Anonymous discovery now works (what the source's API server relies on).
    expect(await anonymousGet(`${t.server}/.well-known/openid-configuration`, t.caPem, 10_000)).toMatchObject({ kind: 'http', status: 200 });

    pod = await podWithToken(tKc, ns);
    const ms = await timeUntil(`${S} accepts a pod token of ${T}`, async () => (await review(s, pod.token)).accepted, RELOAD_DEADLINE_MS);
    timings.push(`entry added → accepted ${Date.now() - federatedAt} ms after federate returned (${ms} ms after the pod token was minted)`);
    const who = await review(s, pod.token);
    expect(who).toEqual({
      accepted: true,
      username: federatedUsername(T, ns, 'app'),
      groups: expect.arrayContaining([...federatedGroups(T, ns), 'system:authenticated']),
      extra: expect.objectContaining({ 'multicluster.admiralty.io/pod-name': [pod.podName], 'multicluster.admiralty.io/pod-namespace': [ns] }),
    });
    expect(who.accepted && who.groups.filter((g) => g.startsWith('system:') && g !== 'system:authenticated')).toEqual([]);

    const again = await kubemcsa(['federate', '--target-context', T, '--source-context', S, '--allow-anonymous-discovery', '--authentication-config', s.authenticationConfigPath]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`ConfigMap ${INSTALL_NAMESPACE}/${RECORD}: unchanged`));
    expect((parse(readFileSync(s.authenticationConfigPath, 'utf8')) as { jwt: unknown[] }).jwt).toHaveLength(1);
  });

  it('RBAC in the source decides: 403, 200 after kubemcsa grant --federated, 403 again within seconds of kubemcsa revoke', async () => {
    expect(await listPodsStatus(s, sourceNs, pod.token)).toBe(403);
    // The pod's namespace in the target names the source namespace (namespace sameness): grant in a namespace of that name.
    await sKc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    // An aggregated role such as view has no rules here (the harness runs no clusterrole-aggregation controller): bind what view aggregates.
    const grantArgs = ['app', '-n', ns, '--target-name', T, '--source-context', S, '--federated', '--role', 'system:aggregate-to-view'];
    const g = await kubemcsa(['grant', ...grantArgs]);
    expect(g.code).toBe(0);
    expect(g.stderr).toMatch(new RegExp(`RoleBinding ${ns}/mcsa-federated\\.${T}\\.app\\.system-aggregate-to-view: created`));
    const granted = await timeUntil('200 after the federated grant', async () => (await listPodsStatus(s, ns, pod.token)) === 200, RBAC_DEADLINE_MS);
    expect(await listPodsStatus(s, sourceNs, pod.token)).toBe(403);
    const again = await kubemcsa(['grant', ...grantArgs]);
    expect(again.stderr).toMatch(/: unchanged/);
    const r = await kubemcsa(['revoke', ...grantArgs]);
    expect(r.code).toBe(0);
    const revoked = await timeUntil('403 after the federated revoke', async () => (await listPodsStatus(s, ns, pod.token)) === 403, RBAC_DEADLINE_MS);
    timings.push(`federated grant → 200 in ${granted} ms after kubemcsa grant returned; revoke → 403 in ${revoked} ms after kubemcsa revoke returned`);
  });

  it("works unchanged with the config library and kubectl: the files a federated mount holds (the controller's ConfigMap data, the pod's token)", async () => {
    // The files as the webhook projects them: the ConfigMap's items (as the controller writes it) and the token.
    const mount = mkdtempSync(path.join(os.tmpdir(), 'federation-mount-'));
    try {
      const data = buildFederatedConfigMap({ importName: 'fed', importNamespace: ns, importUid: 'uid', source: { server: s.server, caPem: s.caPem, audience: AUDIENCE } }).data!;
      mkdirSync(path.join(mount, 'fed'));
      for (const key of ['ca.crt', 'server', 'namespace', 'config']) writeFileSync(path.join(mount, 'fed', key), data[key]!);
      writeFileSync(path.join(mount, 'fed', 'token'), pod.token, { mode: 0o600 });
      const grantArgs = ['app', '-n', ns, '--target-name', T, '--source-context', S, '--federated', '--role', 'system:aggregate-to-view'];
      expectExit(await kubemcsa(['grant', ...grantArgs]), 0);
      try {
        const { kubeConfig, namespace } = await namedServiceAccountImportConfigAndNamespace('fed', { mountRoot: mount });
        expect(namespace).toBe(ns);
        await waitFor('the config library to list pods at the source', async () => {
          await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, limit: 1 });
          return true;
        }, RBAC_DEADLINE_MS, 250);
        const r = await kubectl(path.join(mount, 'fed', 'config'), ['get', 'pods', '-o', 'name']);
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^(No resources found in \S+ namespace\.\n)?$/) });
      } finally {
        expectExit(await kubemcsa(['revoke', ...grantArgs]), 0);
      }
    } finally {
      rmSync(mount, { recursive: true, force: true });
    }
  });

  it('refuses a token of an untrusted cluster, an unbound token and another audience (401)', async () => {
    const u = new KubeConfig();
    u.loadFromFile(third!.info.kubeconfigPath);
    const untrusted = await podWithToken(u, ns, { createNamespace: true });
    expect(await review(s, untrusted.token)).toEqual({ accepted: false, status: 401 });
    const unbound = await podWithToken(tKc, ns, { bound: false });
    expect(await review(s, unbound.token)).toEqual({ accepted: false, status: 401 });
    const otherAudience = await podWithToken(tKc, ns, { audience: 'multicluster.admiralty.io/elsewhere' });
    expect(await review(s, otherAudience.token)).toEqual({ accepted: false, status: 401 });
    // The pod's own token still works: the refusals are about those tokens, not a broken authenticator.
    expect((await review(s, pod.token)).accepted).toBe(true);
  });

  it("follows a rotation of the target's signing key once the source rebuilds its authenticator (kubemcsa federate --refresh-keys); a retired key is refused after the next", async () => {
    // cluster3 as a second target of the same source, with its own entry in the same file.
    const env = { KUBECONFIG: [allKubeconfig(), third!.info.kubeconfigPath].join(path.delimiter) };
    const federate3 = (...extra: string[]) => kubemcsa(['federate', '--target-context', 'cluster3', '--source-context', S, '--allow-anonymous-discovery', '--authentication-config', s.authenticationConfigPath, ...extra], { env });
    const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid?: string }).kid;
    const u = new KubeConfig();
    u.loadFromFile(third!.info.kubeconfigPath);
    try {
      expectExit(await federate3(), 0);
      const old = await podWithToken(u, ns);
      await timeUntil(`${S} accepts a pod token of cluster3`, async () => (await review(s, old.token)).accepted, RELOAD_DEADLINE_MS);

      await third!.rotateServiceAccountKey();
      const fresh = await podWithToken(u, ns);
      expect(kidOf(fresh.token)).not.toBe(kidOf(old.token));
      // The source fetched cluster3's keys moments ago; kube-apiserver serves them with max-age 3600,
      // and until that expires the source verifies with what it fetched: the new key is unknown there.
      expect(await review(s, fresh.token)).toEqual({ accepted: false, status: 401 });
      expect((await review(s, old.token)).accepted).toBe(true);
      const unchanged = await federate3();
      expectExit(unchanged, 0);
      expect(unchanged.stderr).toMatch(/JWT authenticator for issuer \S+ in \S+: unchanged/);

      const refresh = await federate3('--refresh-keys');
      expectExit(refresh, 0);
      expect(refresh.stderr).toMatch(/rewrote \S+ \(JWT authenticator for issuer \S+ unchanged\) so that the source's API server fetches the issuer's keys again/);
      expect(readFileSync(s.authenticationConfigPath, 'utf8')).toMatch(/^# kubemcsa federate --refresh-keys /);
      const accepted = await timeUntil(`${S} accepts a token of cluster3's new key`, async () => (await review(s, fresh.token)).accepted, RELOAD_DEADLINE_MS);
      expect((await review(s, old.token)).accepted).toBe(true);

      await third!.rotateServiceAccountKey({ retire: true });
      expect((await review(s, old.token)).accepted).toBe(true);
      const refreshAgain = await federate3('--refresh-keys');
      expectExit(refreshAgain, 0);
      const retired = await timeUntil(`${S} refuses a token of cluster3's retired key`, async () => !(await review(s, old.token)).accepted, RELOAD_DEADLINE_MS);
      expect((await review(s, fresh.token)).accepted).toBe(true);
      timings.push(`signing key rotated in the target → new key accepted ${accepted} ms after federate --refresh-keys; retired key refused ${retired} ms after the next`);
    } finally {
      expectExit(await kubemcsa(['unfederate', '--target-context', 'cluster3', '--source-context', S, '--authentication-config', s.authenticationConfigPath], { env }), 0);
    }
    // cluster1's entry and tokens were untouched by all of it.
    expect((await review(s, pod.token)).accepted).toBe(true);
  });

  it('kubemcsa status reports that the source accepts a pod-bound probe token, printing no token', async () => {
    await tKc.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: INSTALL_NAMESPACE,
      // Restricted-compliant: the install namespace carries the Pod Security labels of install.yaml once a suite has applied it.
      body: {
        metadata: { name: probePod },
        spec: {
          serviceAccountName: 'default',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{ name: 'c', image: 'registry.invalid/probe:1', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
        },
      },
    });
    const r = await kubemcsa(['status', '--context', T, '-o', 'json']);
    expect(r.code).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/eyJ/);
    const federation = (JSON.parse(r.stdout) as { federation: Array<{ source: string; accepted: string; user?: string }> }).federation;
    expect(federation).toEqual([expect.objectContaining({ source: S, accepted: 'yes', user: federatedUsername(T, INSTALL_NAMESPACE, 'default') })]);
    const table = await kubemcsa(['status', '--context', T]);
    expect(table.stdout).toMatch(new RegExp(`Federated sources[^\\n]*\\n[\\s\\S]*${S}\\s+${s.server.replace(/[.]/g, '\\.')}\\s+${AUDIENCE}\\s+yes`));
  });

  it('unfederate removes the record and the entry: the pod token is refused (401) after the reload; no Secret was created', async () => {
    const r = await kubemcsa(['unfederate', '--target-context', T, '--source-context', S, '--authentication-config', s.authenticationConfigPath]);
    expect(r.code).toBe(0);
    const removedAt = Date.now();
    expect((parse(readFileSync(s.authenticationConfigPath, 'utf8')) as { jwt: unknown[] }).jwt).toEqual([]);
    const ms = await timeUntil(`${S} refuses ${T}'s pod token`, async () => !(await review(s, pod.token)).accepted, RELOAD_DEADLINE_MS);
    timings.push(`entry removed → 401 in ${ms} ms (${Date.now() - removedAt} ms after unfederate returned)`);
    expect(await review(s, pod.token)).toEqual({ accepted: false, status: 401 });
    await expect(tKc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: INSTALL_NAMESPACE, name: RECORD })).rejects.toMatchObject({ code: 404 });

    const newSecrets = (before: Set<string>, after: Set<string>) => [...after].filter((x) => !before.has(x));
    expect(newSecrets(secretsBefore.t, await allSecrets(tKc))).toEqual([]);
    expect(newSecrets(secretsBefore.s, await allSecrets(sKc))).toEqual([]);
  });
});
