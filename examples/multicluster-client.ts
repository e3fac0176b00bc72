// Multicluster client: lists pods through every mounted ServiceAccountImport and every kubeconfig
// context (allNamedConfigsAndNamespaces()), each in its own namespace.
//
//   node --import tsx examples/multicluster-client.ts
//
// Prints one line per pod, `<import or context>\t<namespace>/<pod>`. Every cluster is tried; if
// any fails (or there is nothing to list from), the errors go to stderr and the exit code is 1.
import { CoreV1Api } from '@kubernetes/client-node';
import { allNamedConfigsAndNamespaces } from '../src/config/index.js';
import { describeError } from '../src/describe-error.js';
import { callOptions } from '../streams/kube-call.js';

/** Every call gives up (and aborts its request) after this long: one dead cluster never hangs the others' output. */
const CALL_TIMEOUT_MS = 30_000;

async function main(): Promise<number> {
  const all = await allNamedConfigsAndNamespaces();
  if (all.size === 0) {
    console.error('multicluster-client: no service account import is mounted and no kubeconfig context is defined');
    return 1;
  }
  const results = await Promise.all(
    [...all].map(async ([name, { kubeConfig, namespace }]) => {
      try {
        const pods = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace }, callOptions({ timeoutMs: CALL_TIMEOUT_MS }));
        return { name, lines: pods.items.map((p) => `${name}\t${namespace}/${p.metadata?.name ?? '?'}`) };
      } catch (e) {
        return { name, error: `${name}: listing pods in namespace ${namespace} failed: ${describeError(e)}` };
      }
    }),
  );
  let failed = 0;
  for (const r of results) {
    if (r.error !== undefined) {
      console.error(`multicluster-client: ${r.error}`);
      failed++;
    } else {
      for (const line of r.lines ?? []) console.log(line);
      console.error(`${r.name}: ${r.lines?.length ?? 0} pods`);
    }
  }
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`multicluster-client: ${describeError(e)}`);
    process.exitCode = 1;
  },
);
