#!/usr/bin/env node
// kubemcsa: bootstrap, unbootstrap, grant, revoke, export, kubeconfig, status, federate, unfederate. Run with `node --import tsx cli/kubemcsa.ts`.
// Runners are imported on demand: loading the Kubernetes client takes seconds, `--help` should not.
import '../src/node-version.js';
import { processOutput } from './lib/output.js';
import { main, type Runners } from './program.js';

const runners: Runners = {
  bootstrap: async (o, out) => (await import('./lib/bootstrap.js')).runBootstrap(o, out),
  unbootstrap: async (o, out) => (await import('./lib/unbootstrap.js')).runUnbootstrap(o, out),
  grant: async (o, out) => (await import('./lib/grant.js')).runGrant(o, out),
  revoke: async (o, out) => (await import('./lib/grant.js')).runRevoke(o, out),
  export: async (o, out) => (await import('./lib/export.js')).runExport(o, out),
  kubeconfig: async (o, out) => (await import('./lib/import-kubeconfig.js')).runImportKubeconfig(o, out),
  status: async (o, out) => (await import('./lib/status.js')).runStatus(o, out),
  federate: async (o, out) => (await import('./lib/federate.js')).runFederate(o, out),
  unfederate: async (o, out) => (await import('./lib/federate.js')).runUnfederate(o, out),
};

// No top-level await: the single-file executables bundle this module as CommonJS.
void main(process.argv.slice(2), runners, processOutput, process.stderr).then((code) =>
  // Exit once stdout and stderr are flushed: idle keep-alive connections must not hold the process.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code))),
);
