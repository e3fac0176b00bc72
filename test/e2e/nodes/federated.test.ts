// Federated imports on real nodes (issue 17, ADR 0022): the controller and the webhook run as pods
// of the built image in cluster1; `kubemcsa federate` makes cluster2's API server trust cluster1's
// ServiceAccount issuer (the JWT authenticator written into its --authentication-config); a Job of
// the client image, annotated with a federated import, lists cluster2's pods with the token the
// kubelet projected for its own ServiceAccount. No token is copied: no Secret of either cluster
// holds a token for the source's audience.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { CLIENT_REF } from '../../../scripts/image.js';
import { API_GROUP, API_VERSION, IMPORT_ANNOTATION, IMPORT_LABEL } from '../../../src/constants.js';
import { federatedUsername } from '../../../src/federation/identity.js';
import { ANONYMOUS_DISCOVERY_BINDING } from '../../../src/federation/record.js';
import { configMapNameForImport } from '../../../src/naming.js';
import { installFromOverlay, k, removeSourceObjects, sourceObjects, writeOverlay } from '../../harness/demo-nodes.js';
import { clusterInfo, kubectl, testClusters } from '../../harness/env.js';
import { GiveUp, waitFor } from '../../harness/https.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../../harness/install.js';
import { resetAuthenticationConfig } from '../../harness/cluster.js';
import { kubemcsa } from '../../integration/cli-support.js';

const IMPORT = 'cluster2-federated';
const SA = 'federated-client';
const ROLE = 'mcsa-e2e-federated-pod-lister';
const JOB = 'federated-client';
const AUDIENCE = 'multicluster.admiralty.io/cluster2';
/** The source's reload of its authentication configuration (file watch, then the new authenticator's health check every 10 s). */
const RELOAD_DEADLINE_S = 120;
const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-e2e-federated-'));

interface Pod {
  metadata: { name: string };
  spec: { serviceAccountName?: string; volumes?: { name: string; secret?: unknown; projected?: { sources: { configMap?: { name: string }; serviceAccountToken?: { audience?: string; path: string } }[] } }[] };
}

/** Claims of every JWT found in any value of any Secret of `context` (decoded, never printed). */
async function tokensInSecrets(context: string): Promise<{ secret: string; aud: string[]; sub: string }[]> {
  const list = JSON.parse(await k(context, ['get', 'secrets', '--all-namespaces', '-o', 'json'])) as { items: { metadata: { namespace: string; name: string }; data?: Record<string, string> }[] };
  const found: { secret: string; aud: string[]; sub: string }[] = [];
  for (const s of list.items) {
    for (const b64 of Object.values(s.data ?? {})) {
      for (const jwt of Buffer.from(b64, 'base64').toString('utf8').match(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/g) ?? []) {
        const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as { aud?: string | string[]; sub?: string };
        found.push({ secret: `${s.metadata.namespace}/${s.metadata.name}`, aud: [claims.aud ?? []].flat(), sub: claims.sub ?? '' });
      }
    }
  }
  return found;
}

beforeAll(async () => {
  // Idempotent: the same install as the getting-started suite, whichever file runs first.
  await installFromOverlay('cluster1', writeOverlay(path.join(work, 'overlay')));
  await sourceObjects();
}, 300_000);

afterAll(async () => {
  const kc = testClusters().kubeconfigPath;
  await kubectl(kc, ['--context', 'cluster1', 'delete', `job/${JOB}`, `serviceaccountimports.${API_GROUP}/${IMPORT}`, `serviceaccount/${SA}`, '--ignore-not-found', '--wait=false']);
  await kubemcsa(['revoke', SA, '-n', 'default', '--target-name', 'cluster1', '--source-context', 'cluster2', '--federated', '--role', ROLE]);
  await kubemcsa(['unfederate', '--target-context', 'cluster1', '--source-context', 'cluster2', '--authentication-config', clusterInfo('cluster2').authenticationConfigPath]);
  resetAuthenticationConfig(clusterInfo('cluster2'));
  await kubectl(kc, ['--context', 'cluster1', 'delete', 'clusterrolebinding', ANONYMOUS_DISCOVERY_BINDING, '--ignore-not-found']);
  await kubectl(kc, ['--context', 'cluster2', 'delete', 'clusterrole', ROLE, '--ignore-not-found']);
  // The nginx pods it listed: the getting-started doc suite creates the same names after it.
  await removeSourceObjects();
  rmSync(work, { recursive: true, force: true });
}, 240_000);

describe('federated imports on real nodes', () => {
  it("a pod of cluster1 lists cluster2's pods with its own kubelet-projected token; no Secret of either cluster holds a token for cluster2's audience", async () => {
    const cluster2 = clusterInfo('cluster2');
    // The source trusts cluster1's issuer. kubemcsa runs on the host, which cannot reach the issuer
    // URL (cluster1's node address): it warns, and --allow-anonymous-discovery opens discovery anyway.
    const fed = await kubemcsa(['federate', '--target-context', 'cluster1', '--source-context', 'cluster2', '--source-server', cluster2.podServer!,
      '--allow-anonymous-discovery', '--authentication-config', cluster2.authenticationConfigPath]);
    if (fed.code !== 0) throw new Error(`kubemcsa federate failed: ${fed.stderr}`);
    expect(fed.stderr).toMatch(/warning: --allow-anonymous-discovery/);
    expect((parse(readFileSync(cluster2.authenticationConfigPath, 'utf8')) as { jwt: unknown[] }).jwt).toHaveLength(1);

    // In cluster2, its admin binds a ClusterRole that lists pods to the mapped identity, in namespace default.
    await k('cluster2', ['apply', '--server-side', '-f', '-'], JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: ROLE }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
    }));
    const grant = await kubemcsa(['grant', SA, '-n', 'default', '--target-name', 'cluster1', '--source-context', 'cluster2', '--federated', '--role', ROLE]);
    if (grant.code !== 0) throw new Error(`kubemcsa grant --federated failed: ${grant.stderr}`);
    expect(grant.stderr).toContain(federatedUsername('cluster1', 'default', SA));

    // In cluster1: the pod's ServiceAccount and the federated import.
    await k('cluster1', ['label', 'namespace', 'default', `${NAMESPACE_ENABLED_LABEL}=${NAMESPACE_ENABLED_VALUE}`, '--overwrite']);
    await k('cluster1', ['apply', '--server-side', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA, namespace: 'default' } },
      { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport', metadata: { name: IMPORT, namespace: 'default' }, spec: { mode: 'Federated', clusterName: 'cluster2' } },
    ] }));
    await k('cluster1', ['wait', '--for=condition=Ready', `serviceaccountimports.${API_GROUP}/${IMPORT}`, '--timeout=120s']);
    expect(await k('cluster1', ['get', `serviceaccountimports.${API_GROUP}/${IMPORT}`, '-o', 'jsonpath={.status.audience}'])).toBe(AUDIENCE);

    // The Job of the client image, with the multicluster client's default command: it lists pods
    // through every mounted import. Retried until the source has reloaded its configuration.
    const nginx = (JSON.parse(await k('cluster2', ['get', 'pods', '-l', 'app=nginx', '-o', 'json'])) as { items: { metadata: { name: string } }[] }).items.map((p) => p.metadata.name);
    expect(nginx).toHaveLength(2);
    const t0 = Date.now();
    let logs = '';
    let attempts = 0;
    await waitFor(`the federated client Job to list cluster2's pods (within the source's reload, ${RELOAD_DEADLINE_S} s)`, async () => {
      attempts++;
      await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'delete', `job/${JOB}`, '--ignore-not-found', '--wait=true', '--cascade=foreground']);
      await k('cluster1', ['apply', '--server-side', '-f', '-'], JSON.stringify({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: JOB, namespace: 'default' }, spec: { backoffLimit: 0, template: {
        metadata: { annotations: { [IMPORT_ANNOTATION]: IMPORT } },
        spec: { restartPolicy: 'Never', serviceAccountName: SA, containers: [{ name: 'client', image: CLIENT_REF }] },
      } } }));
      let outcome: string | undefined;
      await waitFor(`job/${JOB} to finish`, async () => {
        const job = JSON.parse(await k('cluster1', ['get', `job/${JOB}`, '-o', 'json'])) as { status: { conditions?: { type: string; status: string }[] } };
        outcome = (job.status.conditions ?? []).find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type;
        return outcome !== undefined;
      }, 120_000, 500);
      logs = (await kubectl(testClusters().kubeconfigPath, ['--context', 'cluster1', 'logs', `job/${JOB}`])).stdout;
      if (outcome === 'Complete') return true;
      // Before the reload the source answers 401; anything else is a failure to report.
      if (Date.now() - t0 > RELOAD_DEADLINE_S * 1000) throw new GiveUp(`the client failed after the reload deadline: ${logs}`);
      return false;
    }, (RELOAD_DEADLINE_S + 180) * 1000, 1000);
    console.log(`federated client Job listed cluster2's pods after ${attempts} run(s), ${Date.now() - t0} ms after the import was Ready`);
    expect(logs.trim().split('\n').filter((l) => l.includes('\t')).sort()).toEqual(nginx.map((n) => `${IMPORT}\tdefault/${n}`).sort());

    // What the webhook mounted: the import's ConfigMap and the pod's own token for cluster2's audience, no Secret.
    const pod = (JSON.parse(await k('cluster1', ['get', 'pods', '-l', `job-name=${JOB}`, '-o', 'json'])) as { items: Pod[] }).items[0]!;
    expect(pod.spec.serviceAccountName).toBe(SA);
    const projected = pod.spec.volumes?.filter((v) => v.projected?.sources.some((s) => s.configMap?.name === configMapNameForImport(IMPORT))) ?? [];
    expect(projected).toHaveLength(1);
    expect(projected[0]!.projected!.sources.find((s) => s.serviceAccountToken)?.serviceAccountToken).toMatchObject({ audience: AUDIENCE, path: 'token' });
    expect(pod.spec.volumes?.filter((v) => v.secret !== undefined && v.name.includes(IMPORT)) ?? []).toEqual([]);

    // No token was copied: no Secret in either cluster holds a token for cluster2's audience or of the client's ServiceAccount, and none belongs to the import.
    for (const context of ['cluster1', 'cluster2']) {
      const tokens = await tokensInSecrets(context);
      expect(tokens.filter((t) => t.aud.includes(AUDIENCE) || t.sub === `system:serviceaccount:default:${SA}`)).toEqual([]);
      expect((await k(context, ['get', 'secrets', '--all-namespaces', '-l', `${IMPORT_LABEL}=${IMPORT}`, '-o', 'name'])).trim()).toBe('');
    }
  }, 900_000);
});
