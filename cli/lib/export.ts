// `kubemcsa export NAME`: mints a token for a ServiceAccount and prints a portable Secret.
import { stringify } from 'yaml';
import { CliError } from '../../src/bootstrap/errors.js';
import type { ExportOptions } from '../../src/bootstrap/options.js';
import { buildPortableSecret } from '../../src/secret.js';
import { ClusterClient } from './cluster.js';
import { loadCluster } from './kubeconfig.js';
import type { Output } from './output.js';

export function formatObject(o: object, format: 'yaml' | 'json'): string {
  return format === 'json' ? JSON.stringify(o, null, 2) + '\n' : stringify(o);
}

export async function runExport(opts: ExportOptions, out: Output): Promise<void> {
  const loaded = await loadCluster(opts, '--');
  const c = new ClusterClient('cluster', loaded.clusterName, loaded);
  const caPem = c.requireCa('a portable credential');
  const namespace = opts.namespace ?? loaded.namespace;
  const saRef = { apiVersion: 'v1', kind: 'ServiceAccount', name: opts.serviceAccount, namespace };
  if ((await c.readMeta(saRef)) === undefined) throw new CliError(`ServiceAccount ${namespace}/${opts.serviceAccount} not found in ${c.label}`);
  const minted = await c.mintToken(namespace, opts.serviceAccount, opts.expirationSeconds, opts.audiences);
  const secret = buildPortableSecret({
    name: opts.secretName,
    credential: { server: opts.server ?? loaded.server, caPem, token: minted.token, namespace },
  });
  out.data(formatObject(secret, opts.output));
  out.progress(`${c.tag} token minted for ServiceAccount ${namespace}/${opts.serviceAccount}, expires ${minted.expiration.toISOString()}`);
}
