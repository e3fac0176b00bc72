// `kubemcsa status`: as a target, registered clusters (imports in the install namespace) and all
// imports; as a source, the grants it gives (recorded on the importer ServiceAccounts).
import { decodeOrThrow } from '../../src/api/decode.js';
import { ServiceAccountImport } from '../../src/api/import.js';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { grantRows, grantsTable, importRow, importsTable, registrationsTable, type GrantRow } from '../../src/bootstrap/describe.js';
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
  if (opts.output !== 'table') {
    out.data(formatObject({ cluster: c.name, context: loaded.contextName, registrations, imports, grants }, opts.output));
    return;
  }
  const now = new Date();
  out.data(`Registered clusters (ServiceAccountImports in ${INSTALL_NAMESPACE}):\n`);
  out.data(registrationsTable(registrations, now));
  out.data(`\nServiceAccountImports in all namespaces:\n`);
  out.data(importsTable(imports, now));
  out.data(`\nGrants to target clusters (recorded on the importer ServiceAccounts in ${INSTALL_NAMESPACE}):\n`);
  out.data(grants === null ? `(not visible to this identity)\n` : grantsTable(grants));
}
