// Generic client: lists the pods of its namespace with whatever configuration it finds — the
// single mounted ServiceAccountImport, else the current kubeconfig context, else the in-cluster
// service account (configAndNamespace()).
//
//   node --import tsx examples/generic-client.ts
//
// Prints one line per pod, `<namespace>/<pod>`, and exits 0; on any error prints one line to
// stderr and exits 1. Set MCSA_MOUNT_ROOT to read imports mounted somewhere else than the pod path.
import { CoreV1Api } from '@kubernetes/client-node';
import { configAndNamespace } from '../src/config/index.js';

async function main(): Promise<void> {
  const { kubeConfig, namespace, source } = await configAndNamespace();
  const from = source.kind === 'import' ? `import ${source.name}` : source.kind === 'kubeconfig' ? `context ${source.context}` : 'in-cluster service account';
  const pods = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  console.error(`${pods.items.length} pods in namespace ${namespace} (${from}, ${kubeConfig.getCurrentCluster()?.server ?? 'no server'})`);
  for (const pod of pods.items) console.log(`${namespace}/${pod.metadata?.name ?? '?'}`);
}

main().catch((e: unknown) => {
  console.error(`generic-client: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
