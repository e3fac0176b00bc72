// `kubemcsa status`: as a target, registered clusters (imports in the install namespace), all
// imports and the federated sources (whether each accepts this cluster's pod tokens); as a
// source, the grants it gives (recorded on the importer ServiceAccounts).
import { decodeOrThrow } from '../../src/api/decode.js';
import { ServiceAccountImport } from '../../src/api/import.js';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import * as t from 'io-ts';
import { ObjectMeta } from '../../src/api/import.js';
import { describeError, federationTable, grantRows, grantsTable, importRow, importsTable, registrationsTable, type FederationRow, type GrantRow } from '../../src/bootstrap/describe.js';
import { decodeFederatedRecord, federatedRecordSelector } from '../../src/federation/record.js';
import { withDeadline } from '../../streams/kube-call.js';
import { reviewToken } from '../../streams/self-subject-review.js';
import { managedSelector } from '../../src/bootstrap/names.js';
import type { StatusOptions } from '../../src/bootstrap/options.js';
import { ClusterClient } from './cluster.js';
import { formatObject } from './export.js';
import { loadCluster } from './kubeconfig.js';
import type { Output } from './output.js';

/**
 * Every grant recorded on the importer ServiceAccounts kubemcsa created in this cluster; null
 * (said on stderr) when this identity may not list ServiceAccounts in the install namespace: a
 * tenant of a target may look at its imports without seeing what the cluster grants as a source.
 */
async function listGrants(c: ClusterClient, out: Output): Promise<GrantRow[] | null> {
  const missing = await c.missingPermissions([{ verb: 'list', group: '', resource: 'serviceaccounts', namespace: INSTALL_NAMESPACE }]);
  if (missing.length > 0) {
    out.progress(`${c.label}: grants not shown: this identity may not list serviceaccounts in namespace ${INSTALL_NAMESPACE}`);
    return null;
  }
  const importers = await c.list('v1', 'ServiceAccount', { namespace: INSTALL_NAMESPACE, labelSelector: managedSelector });
  return importers.flatMap(({ meta }) => grantRows(meta)).sort((a, b) => a.target.localeCompare(b.target));
}

/** The probe token's lifetime: the TokenRequest minimum. */
const PROBE_TOKEN_SECONDS = 600;
const PROBE_TIMEOUT_MS = 15_000;

const PodObject = t.type({ metadata: ObjectMeta, spec: t.partial({ serviceAccountName: t.string }) });

/**
 * A pod of the install namespace to bind probe tokens to: a source accepts only pod-bound tokens
 * (the controller's pod in an installation). Undefined when there is none.
 */
async function probePod(c: ClusterClient): Promise<{ name: string; uid: string; serviceAccount: string } | undefined> {
  const pods = await c.list('v1', 'Pod', { namespace: INSTALL_NAMESPACE });
  for (const { raw } of pods.sort((a, b) => a.meta.metadata.name.localeCompare(b.meta.metadata.name))) {
    const p = decodeOrThrow(PodObject, raw, `Pod in ${c.label}`);
    const deleting = p.metadata.deletionTimestamp !== undefined && p.metadata.deletionTimestamp !== null;
    if (!deleting && p.metadata.uid !== undefined) return { name: p.metadata.name, uid: p.metadata.uid, serviceAccount: p.spec.serviceAccountName ?? 'default' };
  }
  return undefined;
}

/**
 * Each federated source record, with whether its source accepts this cluster's tokens: a fresh
 * pod-bound token with the record's audience, presented in a SelfSubjectReview at the source. The
 * token is never printed. Null (said on stderr) when this identity may not list the records.
 */
async function federationRows(c: ClusterClient, out: Output): Promise<FederationRow[] | null> {
  const missing = await c.missingPermissions([{ verb: 'list', group: '', resource: 'configmaps', namespace: INSTALL_NAMESPACE }]);
  if (missing.length > 0) {
    out.progress(`${c.label}: federated sources not shown: this identity may not list configmaps in namespace ${INSTALL_NAMESPACE}`);
    return null;
  }
  const records = (await c.list('v1', 'ConfigMap', { namespace: INSTALL_NAMESPACE, labelSelector: federatedRecordSelector })).map(({ raw, meta }) =>
    decodeFederatedRecord(raw, `federated source record ConfigMap ${INSTALL_NAMESPACE}/${meta.metadata.name} in ${c.label}`),
  );
  if (records.length === 0) return [];
  const pod = await probePod(c);
  const rows: FederationRow[] = [];
  for (const r of records.sort((a, b) => a.sourceName.localeCompare(b.sourceName))) {
    const base = { source: r.sourceName, server: r.server, audience: r.audience };
    if (pod === undefined) {
      rows.push({ ...base, accepted: 'unknown', detail: `no pod in namespace ${INSTALL_NAMESPACE} to bind a probe token to (the source accepts only pod-bound tokens)` });
      continue;
    }
    try {
      const { token } = await c.mintPodToken(INSTALL_NAMESPACE, pod.serviceAccount, pod, PROBE_TOKEN_SECONDS, [r.audience]);
      const cluster = { name: r.sourceName, server: r.server, caData: Buffer.from(r.caPem).toString('base64'), skipTLSVerify: false };
      const answer = await withDeadline(PROBE_TIMEOUT_MS, r.server, () => reviewToken(cluster, token, `source ${r.sourceName}`));
      rows.push(
        answer.accepted
          ? { ...base, accepted: 'yes', user: answer.username, detail: `pod ${pod.name} is ${answer.username}` }
          : { ...base, accepted: 'no', detail: 'HTTP 401: the source does not trust this cluster\'s issuer for this audience (its JWT authenticator is missing, not yet reloaded, or different)' },
      );
    } catch (e) {
      rows.push({ ...base, accepted: 'unknown', detail: `source unreachable or failing: ${describeError(e)}` });
    }
  }
  return rows;
}

export async function runStatus(opts: StatusOptions, out: Output): Promise<void> {
  const loaded = await loadCluster(opts, '--');
  const c = new ClusterClient('cluster', loaded.clusterName, loaded);
  await c.version();
  const decodeAll = (items: unknown[]) =>
    items.map((i) => importRow(decodeOrThrow(ServiceAccountImport, i, `ServiceAccountImport in ${c.label}`))).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  // A cluster that is only a source has no CRD: it still has grants to show.
  const served = await c.servesImports();
  if (!served) out.progress(`${c.label} does not serve the ServiceAccountImport API (the CRD is not installed): no registrations or imports`);
  const registrations = served ? decodeAll(await c.listImports(INSTALL_NAMESPACE)) : [];
  const imports = served ? decodeAll(await c.listImports()) : [];
  const grants = await listGrants(c, out);
  const federation = await federationRows(c, out);
  if (opts.output !== 'table') {
    out.data(formatObject({ cluster: c.name, context: loaded.contextName, registrations, imports, grants, federation }, opts.output));
    return;
  }
  const now = new Date();
  out.data(`Registered clusters (ServiceAccountImports in ${INSTALL_NAMESPACE}):\n`);
  out.data(registrationsTable(registrations, now));
  out.data(`\nServiceAccountImports in all namespaces:\n`);
  out.data(importsTable(imports, now));
  out.data(`\nGrants to target clusters (recorded on the importer ServiceAccounts in ${INSTALL_NAMESPACE}):\n`);
  out.data(grants === null ? `(not visible to this identity)\n` : grantsTable(grants));
  out.data(`\nFederated sources (records in ${INSTALL_NAMESPACE}; does each accept a pod token of this cluster?):\n`);
  out.data(federation === null ? `(not visible to this identity)\n` : federationTable(federation));
}
