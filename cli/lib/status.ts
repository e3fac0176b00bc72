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

/** Every grant recorded on the importer ServiceAccounts kubemcsa created in this cluster. */
async function listGrants(c: ClusterClient): Promise<GrantRow[]> {
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
  const grants = await listGrants(c);
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
  out.data(grantsTable(grants));
}
