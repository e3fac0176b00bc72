// Long-running client of one mounted ServiceAccountImport: follows it with
// namedServiceAccountImportConfigAndNamespace$ (a fresh KubeConfig whenever the kubelet updates
// the mounted Secret, i.e. at every token rotation), lists pods in the import's namespace every
// interval, and prints a status line every second:
//
//   node --import tsx examples/watch-client.ts <import> [intervalMs]
//   {"import":"cluster2-reader","ok":41,"failed":0,"generation":"..2026_12_04_09_20_00.123456789"}
//
// `generation` is the kubelet's current `..data` directory of the mount: it changes when the
// Secret does (never the token itself, which is not printed). Failed calls are printed with the
// error, redacted. Runs until stopped (SIGTERM or SIGINT: exit code 0).
import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { namedServiceAccountImportConfigAndNamespace$, type ConfigAndNamespace } from '../src/config/index.js';
import { describeError } from '../src/describe-error.js';
import { callOptions } from '../streams/kube-call.js';

const [name, intervalArg] = process.argv.slice(2);
if (!name) {
  console.error('usage: watch-client <import> [intervalMs]');
  process.exit(2);
}
const intervalMs = Number(intervalArg ?? 1000);
if (!Number.isFinite(intervalMs) || intervalMs < 10) {
  console.error(`watch-client: the interval must be a number of milliseconds ≥ 10, got ${JSON.stringify(intervalArg)}`);
  process.exit(2);
}

let current: ConfigAndNamespace | undefined;
let ok = 0;
let failed = 0;
let calling = false;

const subscription = namedServiceAccountImportConfigAndNamespace$(name).subscribe({
  next: (c) => (current = c),
  error: (e: unknown) => {
    console.error(`watch-client: import ${name}: ${describeError(e)}`);
    process.exit(1);
  },
});

/** One call at a time: a slow cluster delays the next call instead of piling calls up. */
const call = setInterval(() => {
  if (!current || calling) return;
  calling = true;
  const { kubeConfig, namespace } = current;
  kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace }, callOptions({ timeoutMs: 10_000 }))
    .then(
      () => ok++,
      (e: unknown) => {
        failed++;
        console.error(`watch-client: listing pods in namespace ${namespace} failed: ${describeError(e)}`);
      },
    )
    .finally(() => (calling = false));
}, intervalMs);

const status = setInterval(() => {
  const source = current?.source;
  const dir = source?.kind === 'import' ? source.path : undefined;
  void (dir ? readlink(path.join(dir, '..data')).catch(() => '') : Promise.resolve('')).then((generation) =>
    console.log(JSON.stringify({ import: name, ok, failed, generation })),
  );
}, 1000);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    clearInterval(call);
    clearInterval(status);
    subscription.unsubscribe();
  });
}
