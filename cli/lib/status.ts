// `kubemcsa status`: registered clusters (imports in the install namespace) and all imports.
import { decodeOrThrow } from '../../src/api/decode.js';
import { ServiceAccountImport } from '../../src/api/import.js';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { CliError } from '../../src/bootstrap/errors.js';
import { importRow, importsTable, registrationsTable } from '../../src/bootstrap/describe.js';
import type { StatusOptions } from '../../src/bootstrap/options.js';
import { ClusterClient } from './cluster.js';
import { formatObject } from './export.js';
import { loadCluster } from './kubeconfig.js';
import type { Output } from './output.js';

export async function runStatus(opts: StatusOptions, out: Output): Promise<void> {
  const loaded = loadCluster(opts, '--');
  const c = new ClusterClient('cluster', loaded.clusterName, loaded);
  await c.version();
  if (!(await c.servesImports())) throw new CliError(`${c.label} does not serve the ServiceAccountImport API (the CRD is not installed)`);
  const decodeAll = (items: unknown[]) =>
    items.map((i) => importRow(decodeOrThrow(ServiceAccountImport, i, `ServiceAccountImport in ${c.label}`))).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const registrations = decodeAll(await c.listImports(INSTALL_NAMESPACE));
  const imports = decodeAll(await c.listImports());
  if (opts.output !== 'table') {
    out.data(formatObject({ cluster: c.name, context: loaded.contextName, registrations, imports }, opts.output));
    return;
  }
  const now = new Date();
  out.data(`Registered clusters (ServiceAccountImports in ${INSTALL_NAMESPACE}):\n`);
  out.data(registrationsTable(registrations, now));
  out.data(`\nServiceAccountImports in all namespaces:\n`);
  out.data(importsTable(imports, now));
}
