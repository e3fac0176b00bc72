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
import { describeError } from '../src/describe-error.js';
import { callOptions } from '../streams/kube-call.js';

/** Every call gives up (and aborts its request) after this long. */
const CALL_TIMEOUT_MS = 30_000;

async function main(): Promise<void> {
  const { kubeConfig, namespace, source } = await configAndNamespace();
  const from = source.kind === 'import' ? `import ${source.name}` : source.kind === 'kubeconfig' ? `context ${source.context}` : 'in-cluster service account';
  const pods = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace }, callOptions({ timeoutMs: CALL_TIMEOUT_MS }));
  console.error(`${pods.items.length} pods in namespace ${namespace} (${from}, ${kubeConfig.getCurrentCluster()?.server ?? 'no server'})`);
  for (const pod of pods.items) console.log(`${namespace}/${pod.metadata?.name ?? '?'}`);
}

main().catch((e: unknown) => {
  // One bounded line, tokens redacted, the server's Status message when it answered.
  console.error(`generic-client: ${describeError(e)}`);
  process.exitCode = 1;
});
