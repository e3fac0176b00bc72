// Federated imports (ADR 0022), the pure parts: the discriminated spec codec, the source record,
// the ConfigMap the controller keeps, the decision, the policy, the names, and the kubeconfig the
// ConfigMap carries as the config library and kubectl read it (relative paths from its directory).
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decode } from '../../../src/api/decode.js';
import { isFederatedImport, isTokenImport, ServiceAccountImport, type FederatedImport } from '../../../src/api/import.js';
import { loadKubeconfigContext } from '../../../src/config/loaders.js';
import { evaluateFederatedPolicy, type ImportPolicy } from '../../../src/consent/policy.js';
import { API_GROUP_VERSION, FEDERATED_SOURCE_LABEL, IMPORT_KIND, IMPORT_LABEL, IMPORT_NAME_ANNOTATION, MOUNT_ROOT } from '../../../src/constants.js';
import { decideFederated, leftoverOf, orphansOf } from '../../../src/controller/decide.js';
import { authorization } from '../config/fixtures.js';
import { buildFederatedConfigMap, configMapDataHash, parseFederatedSource } from '../../../src/federation/imports.js';
import { configMapNameForImport, isDns1123Subdomain, secretNameForImport } from '../../../src/naming.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBfederated\n-----END CERTIFICATE-----\n';
const SERVER = 'https://cluster2.example:6443';
const AUDIENCE = 'multicluster.admiralty.io/cluster2';
const record = { key: 'multicluster-service-account/federate-cluster2', data: { server: SERVER, 'ca.crt': CA, audience: AUDIENCE } };
const sai: FederatedImport = { metadata: { name: 'cluster2', namespace: 'team', uid: 'imp-uid', generation: 1 }, spec: { mode: 'Federated', clusterName: 'cluster2' } };
const allowed = evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, []);
const base = { sai, configMapKey: `team/${configMapNameForImport('cluster2')}`, records: [record], configMap: undefined, installNamespace: 'multicluster-service-account', policy: allowed };

describe('the spec codec', () => {
  it('decodes a federated spec as federated (no remote namespace or name to read) and a spec without mode as a token import', () => {
    const fed = decode(ServiceAccountImport, { metadata: { name: 'a', namespace: 'ns' }, spec: { mode: 'Federated', clusterName: 'c2', expirationSeconds: 900 } });
    if (!fed.ok) throw new Error(fed.problems.join());
    expect(isFederatedImport(fed.value)).toBe(true);
    expect(fed.value.spec).toEqual({ mode: 'Federated', clusterName: 'c2', expirationSeconds: 900 });
    const tok = decode(ServiceAccountImport, { metadata: { name: 'a', namespace: 'ns' }, spec: { clusterName: 'c2', namespace: 'default', name: 'sa' } });
    expect(tok.ok && isTokenImport(tok.value)).toBe(true);
    const explicit = decode(ServiceAccountImport, { metadata: { name: 'a' }, spec: { mode: 'Token', clusterName: 'c2', namespace: 'default', name: 'sa' } });
    expect(explicit.ok && isTokenImport(explicit.value)).toBe(true);
  });

  it('names the failing fields of the branch the mode picks, and refuses an unknown mode', () => {
    const fed = decode(ServiceAccountImport, { metadata: { name: 'a' }, spec: { mode: 'Federated', clusterName: 3 } });
    expect(fed).toEqual({ ok: false, problems: ['spec.clusterName: expected string, got 3'] });
    const tok = decode(ServiceAccountImport, { metadata: { name: 'a' }, spec: { mode: 'Token', clusterName: 'c' } });
    expect(tok.ok ? [] : tok.problems).toEqual(['spec.namespace: expected string, got missing', 'spec.name: expected string, got missing']);
    const odd = decode(ServiceAccountImport, { metadata: { name: 'a' }, spec: { mode: 'Copied', clusterName: 'c', namespace: 'n', name: 's' } });
    expect(odd.ok).toBe(false);
  });
});

describe('the federated source record', () => {
  it('reads server, ca.crt and audience', () => {
    expect(parseFederatedSource(record.data)).toEqual({ ok: true, source: { server: SERVER, caPem: CA, audience: AUDIENCE } });
  });

  it.each([
    [{}, ['server is missing or empty', 'ca.crt is missing or empty', 'audience is missing or empty']],
    [{ ...record.data, server: 'http://cluster2:6443' }, ['server must be an https URL (is http://…)']],
    [{ ...record.data, server: 'not a url' }, ['server is not a URL']],
    [{ ...record.data, 'ca.crt': 'not pem' }, ['ca.crt holds no PEM certificate']],
    [{ ...record.data, audience: '  ' }, ['audience is missing or empty']],
  ])('says what is wrong with %j, and never throws', (data, problems) => {
    expect(parseFederatedSource(data as Record<string, string>)).toEqual({ ok: false, problems });
  });
});

describe('the federated import ConfigMap', () => {
  it('has the generated name, the import label and annotation, a controller owner reference, and the five keys', () => {
    const cm = buildFederatedConfigMap({ importName: 'cluster2', importNamespace: 'team', importUid: 'imp-uid', source: { server: SERVER, caPem: CA, audience: AUDIENCE } });
    expect(cm.metadata).toEqual({
      name: configMapNameForImport('cluster2'),
      namespace: 'team',
      labels: { [IMPORT_LABEL]: 'cluster2' },
      annotations: { [IMPORT_NAME_ANNOTATION]: 'cluster2' },
      ownerReferences: [{ apiVersion: API_GROUP_VERSION, kind: IMPORT_KIND, name: 'cluster2', uid: 'imp-uid', controller: true, blockOwnerDeletion: true }],
    });
    expect(Object.keys(cm.data!).sort()).toEqual(['audience', 'ca.crt', 'config', 'namespace', 'server']);
    expect(cm.data).toMatchObject({ 'ca.crt': CA, server: SERVER, namespace: 'team', audience: AUDIENCE });
    expect(cm.data!.config).toContain('certificate-authority: "ca.crt"');
    expect(cm.data!.config).toContain('tokenFile: "token"');
    expect(cm.data!.config).toContain('namespace: "team"');
    expect(cm.data!.config).not.toContain('certificate-authority-data');
  });

  it('is named from the import name alone, distinct from the Secret, and long names stay valid and distinct', () => {
    expect(configMapNameForImport('cluster2')).toMatch(/^cluster2-federated-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(configMapNameForImport('cluster2')).not.toBe(secretNameForImport('cluster2'));
    const long = `${'a'.repeat(120)}.${'b'.repeat(132)}`;
    const other = `${'a'.repeat(120)}.${'b'.repeat(131)}c`;
    for (const n of [long, other]) {
      expect(configMapNameForImport(n).length).toBeLessThanOrEqual(253);
      expect(isDns1123Subdomain(configMapNameForImport(n))).toBe(true);
    }
    expect(configMapNameForImport(long)).not.toBe(configMapNameForImport(other));
  });
});

describe('the kubeconfig of a federated import, as a pod reads it', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('resolves ca.crt and the token file against the kubeconfig\'s directory (as kubectl does), and re-reads the token', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-federated-'));
    const data = buildFederatedConfigMap({ importName: 'cluster2', importNamespace: 'team', importUid: 'u', source: { server: SERVER, caPem: CA, audience: AUDIENCE } }).data!;
    for (const k of ['ca.crt', 'server', 'namespace', 'config']) writeFileSync(path.join(dir, k), data[k]!);
    writeFileSync(path.join(dir, 'token'), 'projected-token-1');
    const env = { mountRoot: MOUNT_ROOT, kubeconfigPaths: [], inCluster: { dir: path.join(dir, 'no-such-dir') } };
    const { value } = await loadKubeconfigContext(env, path.join(dir, 'config'), '');
    expect(value.namespace).toBe('team');
    expect(value.kubeConfig.getCurrentCluster()).toMatchObject({ server: SERVER, caFile: path.join(dir, 'ca.crt') });
    const auth = () => authorization(value.kubeConfig);
    expect(await auth()).toBe('Bearer projected-token-1');
    // The kubelet rotates it (a new file swapped in).
    writeFileSync(path.join(dir, 'token.new'), 'projected-token-2');
    renameSync(path.join(dir, 'token.new'), path.join(dir, 'token'));
    expect(await auth()).toBe('Bearer projected-token-2');
  });
});

describe('decideFederated', () => {
  it('applies the ConfigMap built from the record when there is none, and is Ready once it is current', () => {
    const d = decideFederated(base);
    expect(d).toMatchObject({ action: 'apply', why: 'no ConfigMap yet', source: { server: SERVER, caPem: CA, audience: AUDIENCE }, expirationSeconds: 3600 });
    const cm = d.action === 'apply' ? d.configMap : undefined;
    expect(cm?.metadata?.name).toBe(configMapNameForImport('cluster2'));
    const current = { controllerUid: 'imp-uid', foreign: false, dataHash: configMapDataHash(cm!.data) };
    expect(decideFederated({ ...base, configMap: current })).toEqual({ action: 'ready', source: { server: SERVER, caPem: CA, audience: AUDIENCE }, expirationSeconds: 3600 });
    expect(decideFederated({ ...base, configMap: { ...current, dataHash: 'edited' } })).toMatchObject({ action: 'apply', why: 'the ConfigMap was changed, or the source record changed' });
    expect(decideFederated({ ...base, configMap: { ...current, controllerUid: 'a-previous-import' } })).toMatchObject({ action: 'apply', why: 'the ConfigMap is not controlled by this import' });
    const moved = { ...record, data: { ...record.data, server: 'https://elsewhere.example:6443' } };
    expect(decideFederated({ ...base, records: [moved], configMap: current })).toMatchObject({ action: 'apply', configMap: { data: { server: 'https://elsewhere.example:6443' } } });
  });

  it('takes the lifetime the policy settled on', () => {
    const policy = evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2', expirationSeconds: 900 }, []);
    expect(decideFederated({ ...base, sai: { ...sai, spec: { ...sai.spec, expirationSeconds: 900 } }, policy })).toMatchObject({ action: 'apply', expirationSeconds: 900 });
  });

  it('is ClusterNotFound without a record, naming the label and namespace', () => {
    expect(decideFederated({ ...base, records: [] })).toEqual({
      action: 'blocked',
      reason: 'ClusterNotFound',
      message: `federated source "cluster2" is not known (no ConfigMap labelled ${FEDERATED_SOURCE_LABEL}=cluster2 in namespace multicluster-service-account); run kubemcsa federate for it`,
      retry: 'event',
    });
  });

  it('is InvalidFederatedSource for an invalid record, naming the ConfigMap, and for two records of one source', () => {
    const bad = decideFederated({ ...base, records: [{ ...record, data: { server: SERVER } }] });
    expect(bad).toMatchObject({ action: 'blocked', reason: 'InvalidFederatedSource', retry: 'event' });
    expect(bad.action === 'blocked' && bad.message).toBe(
      'the record of federated source "cluster2", ConfigMap multicluster-service-account/federate-cluster2, is invalid: ca.crt is missing or empty; audience is missing or empty',
    );
    const two = decideFederated({ ...base, records: [record, { ...record, key: 'multicluster-service-account/another' }] });
    expect(two).toMatchObject({ action: 'blocked', reason: 'InvalidFederatedSource' });
    expect(two.action === 'blocked' && two.message).toContain('ConfigMaps multicluster-service-account/another, multicluster-service-account/federate-cluster2');
  });

  it('is refused by the target\'s policy before anything else, and waits until the policies are listed', () => {
    const off: ImportPolicy[] = [{ metadata: { name: 'strict' }, spec: { clusters: ['cluster2'], namespaceSameness: false } }];
    const refused = decideFederated({ ...base, records: [], policy: evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, off) });
    expect(refused).toMatchObject({ action: 'blocked', reason: 'Forbidden', retry: 'event' });
    expect(refused.action === 'blocked' && refused.message).toBe(
      'federated import in namespace team of cluster "cluster2" is not allowed by the target\'s policy: namespace sameness is turned off for cluster "cluster2" by ServiceAccountImportPolicy strict ' +
        'and no mapping lets namespace team use its own identity (namespace team, remoteNamespace team)',
    );
    expect(decideFederated({ ...base, policy: undefined })).toMatchObject({ action: 'wait' });
  });

  it('reports an invalid spec (stored without the schema) and a foreign ConfigMap', () => {
    const long = decideFederated({ ...base, sai: { ...sai, spec: { ...sai.spec, expirationSeconds: 90_000 } } });
    expect(long).toMatchObject({ action: 'blocked', reason: 'InvalidSpec', retry: 'never' });
    expect(long.action === 'blocked' && long.message).toBe('spec.expirationSeconds of a federated import must be an integer from 600 to 86400 (is 90000)');
    expect(decideFederated({ ...base, configMap: { foreign: true } })).toMatchObject({ action: 'blocked', reason: 'ConfigMapConflict', message: `ConfigMap team/${configMapNameForImport('cluster2')} exists and is controlled by another object; delete or rename it` });
  });
});

describe('evaluateFederatedPolicy', () => {
  it('allows by default, for 3600 s, with no audiences of its own', () => {
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, [])).toEqual({ allowed: true, expirationSeconds: 3600, audiences: [] });
  });

  it('applies the clusters restriction: a policy for another cluster changes nothing, a mapping of the namespace to itself allows it', () => {
    const off = (clusters: string[], mappings: { namespace: string; remoteNamespace: string }[] = []): ImportPolicy[] => [{ metadata: { name: 'p' }, spec: { clusters, namespaceSameness: false, mappings } }];
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, off(['cluster3'])).allowed).toBe(true);
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, off(['cluster2'])).allowed).toBe(false);
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, off(['cluster2'], [{ namespace: 'team', remoteNamespace: 'team' }])).allowed).toBe(true);
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, off(['cluster2'], [{ namespace: 'team', remoteNamespace: 'other' }])).allowed).toBe(false);
  });

  it('caps the lifetime with maxExpirationSeconds: the default is shortened, a longer request refused', () => {
    const capped: ImportPolicy[] = [{ metadata: { name: 'short' }, spec: { maxExpirationSeconds: 1200 } }];
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2' }, capped)).toMatchObject({ allowed: true, expirationSeconds: 1200 });
    expect(evaluateFederatedPolicy({ namespace: 'team', clusterName: 'cluster2', expirationSeconds: 1800 }, capped)).toEqual({
      allowed: false,
      message: 'federated import in namespace team of cluster "cluster2": expirationSeconds 1800 is over 1200 (maxExpirationSeconds of ServiceAccountImportPolicy short)',
    });
  });
});

describe('orphansOf (an import that no longer exists)', () => {
  it('names the Secret and the ConfigMap an import controlled, and nothing something else or nothing controls', () => {
    const byImport = { controllerUid: 'gone', foreign: false };
    expect(orphansOf(byImport, byImport)).toEqual(['Secret', 'ConfigMap']);
    expect(orphansOf(byImport, undefined)).toEqual(['Secret']);
    expect(orphansOf(undefined, { foreign: true })).toEqual([]);
    expect(orphansOf({ foreign: false }, undefined)).toEqual([]);
  });
});

describe('leftoverOf (a mode switch)', () => {
  const ours = { controllerUid: 'imp-uid', foreign: false };
  it('names the Secret of an import now federated, and the ConfigMap of one back to Token, when this import controls it', () => {
    expect(leftoverOf(true, 'imp-uid', ours, undefined)).toBe('Secret');
    expect(leftoverOf(false, 'imp-uid', undefined, ours)).toBe('ConfigMap');
    expect(leftoverOf(true, 'imp-uid', undefined, ours)).toBeUndefined();
    expect(leftoverOf(false, 'imp-uid', ours, undefined)).toBeUndefined();
  });

  it('never names an object another import or another kind of owner controls', () => {
    expect(leftoverOf(true, 'imp-uid', { controllerUid: 'someone', foreign: false }, undefined)).toBeUndefined();
    expect(leftoverOf(false, 'imp-uid', undefined, { foreign: true })).toBeUndefined();
  });
});
