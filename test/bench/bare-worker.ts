/**
 * The bare client of bench:fleet in a process of its own, so that its memory and CPU are measured
 * the way the controller's are: converges every import of one namespace (TokenRequest through the
 * import's registration, Secret create, status patch) with C workers and prints one JSON line.
 * Its job file (written by test/bench/fleet.ts, mode 0600: it holds the registrations' tokens)
 * names the kubeconfig (the controller's ServiceAccount), the namespace and the registrations.
 */
import { readFileSync } from 'node:fs';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL } from '../../src/constants.js';
import { reuseConnections } from '../../src/kube/reuse-connections.js';
import { BareClient, pool, type BareRegistration } from './bare-client.js';
import { cpuMs, rssMiB } from './proc.js';

export interface BareJob {
  kubeconfig: string;
  namespace: string;
  concurrency: number;
  remote: { namespace: string; name: string };
  registrations: Array<[string, BareRegistration]>;
}

export interface BareResult {
  imports: number;
  ms: number;
  cpuMs: number;
  tokenRequests: number;
  /** VmHWM of this process, and its RSS once loaded, before the work. */
  hwmMiB: number;
  rssBeforeMiB: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as BareJob;
  const local = reuseConnections(new KubeConfig());
  local.loadFromFile(job.kubeconfig);
  const bare = new BareClient(local, new Map(job.registrations), job.remote);
  const custom = local.makeApiClient(CustomObjectsApi);
  const list = (await custom.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: job.namespace, plural: IMPORT_PLURAL })) as { items: { metadata: { name: string; uid: string }; spec: { clusterName: string } }[] };
  const rssBeforeMiB = rssMiB('self', 'VmRSS');
  const cpu0 = cpuMs('self');
  const t0 = performance.now();
  await pool(list.items, job.concurrency, (i) => bare.converge(job.namespace, i.metadata.name, i.metadata.uid, i.spec.clusterName));
  const result: BareResult = {
    imports: list.items.length,
    ms: performance.now() - t0,
    cpuMs: cpuMs('self') - cpu0,
    tokenRequests: bare.tokenRequests,
    hwmMiB: rssMiB('self', 'VmHWM'),
    rssBeforeMiB,
  };
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bare worker failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
