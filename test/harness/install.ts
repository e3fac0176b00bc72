// Installs the project into a harness cluster the way `kubectl apply -f manifests/install.yaml`
// would, except that the two Deployments run as local processes (there is no kubelet): with the
// command, args and env of their manifests, as their own ServiceAccounts, and the webhook
// configuration pointed at the local webhook by URL.
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { localRun, manifestContainer, serviceAccountKubeconfig, startLocal } from './deployment.js';
import { adminKubeConfig, kubectl, testClusters } from './env.js';
import { waitFor } from './https.js';
import { freePort } from './ports.js';
import type { ManagedProcess } from './process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WEBHOOK_CONFIG = 'multicluster-service-account-webhook';
/** The namespace label the webhook configuration selects on (manifests/webhook/mutatingwebhookconfiguration.yaml). */
export const NAMESPACE_ENABLED_LABEL = 'multicluster-service-account';
export const NAMESPACE_ENABLED_VALUE = 'enabled';

export interface LocalInstall {
  controller: ManagedProcess;
  webhook: ManagedProcess;
  webhookUrl: string;
  controllerMetrics: string;
  webhookMetrics: string;
  logs: { controller: string; webhook: string };
  stop(): Promise<void>;
}

interface Manifest {
  kind: string;
  metadata: { name: string };
  webhooks?: { clientConfig: Record<string, unknown> }[];
}

async function ready(what: string, proc: ManagedProcess, url: string, logFile: string): Promise<void> {
  await waitFor(`${what} to be ready (${url})`, async () => {
    if (!proc.running) throw new Error(`${what} exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    return (await fetch(url).catch(() => undefined))?.status === 200;
  }, 60_000, 200);
}

export async function installLocally(opts: { cluster: string; dir: string; log?: (m: string) => void; controllerArgs?: string[] }): Promise<LocalInstall> {
  const log = opts.log ?? (() => {});
  const { kubeconfigPath } = testClusters();
  mkdirSync(opts.dir, { recursive: true });
  const webhookPort = await freePort();
  const webhookUrl = `https://127.0.0.1:${webhookPort}/mutate-pods`;

  const docs = parseAllDocuments(readFileSync(path.join(ROOT, 'manifests/install.yaml'), 'utf8')).map((d) => d.toJS() as Manifest).filter((d) => d && d.kind !== 'Deployment');
  for (const d of docs) {
    if (d.kind === 'MutatingWebhookConfiguration') for (const w of d.webhooks ?? []) w.clientConfig = { url: webhookUrl };
  }
  const applied = await kubectl(kubeconfigPath, ['--context', opts.cluster, 'apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));
  if (applied.code !== 0) throw new Error(`installing into ${opts.cluster} failed: ${applied.stderr}`);
  const established = await kubectl(kubeconfigPath, ['--context', opts.cluster, 'wait', '--for=condition=Established', 'crd/serviceaccountimports.multicluster.admiralty.io', '--timeout=60s']);
  if (established.code !== 0) throw new Error(`the CRD is not served: ${established.stderr}`);
  log(`applied ${docs.length} objects of manifests/install.yaml to ${opts.cluster} (Deployments run as local processes; the webhook is reached at ${webhookUrl})`);

  const [cm, cp, wm] = [await freePort(), await freePort(), await freePort()];
  const downwardEnv = { POD_NAMESPACE: INSTALL_NAMESPACE };
  const controllerKc = await serviceAccountKubeconfig(opts.cluster, INSTALL_NAMESPACE, 'multicluster-service-account-controller', path.join(opts.dir, 'controller.kubeconfig'));
  const webhookKc = await serviceAccountKubeconfig(opts.cluster, INSTALL_NAMESPACE, 'multicluster-service-account-webhook', path.join(opts.dir, 'webhook.kubeconfig'));
  const logs = { controller: path.join(opts.dir, 'controller.log'), webhook: path.join(opts.dir, 'webhook.log') };
  const controller = startLocal('controller', localRun(manifestContainer('manifests/controller/deployment.yaml', 'controller'), {
    downwardEnv,
    overrides: { '--metrics-bind-address': `127.0.0.1:${cm}`, '--health-probe-bind-address': `127.0.0.1:${cp}` },
    extra: ['--kubeconfig', controllerKc, ...(opts.controllerArgs ?? [])],
  }), logs.controller);
  const webhook = startLocal('webhook', localRun(manifestContainer('manifests/webhook/deployment.yaml', 'webhook'), {
    downwardEnv,
    overrides: { '--listen-address': `127.0.0.1:${webhookPort}`, '--metrics-address': `127.0.0.1:${wm}` },
    extra: ['--kubeconfig', webhookKc, '--extra-sans=127.0.0.1'],
  }), logs.webhook);
  const stop = async () => {
    await Promise.all([controller.stop(), webhook.stop()]);
  };
  try {
    await ready('the controller', controller, `http://127.0.0.1:${cp}/readyz`, logs.controller);
    await ready('the webhook', webhook, `http://127.0.0.1:${wm}/readyz`, logs.webhook);
    const admission = adminKubeConfig(opts.cluster).makeApiClient(AdmissionregistrationV1Api);
    await waitFor('the webhook to publish its CA bundle', async () => {
      const mwc = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIG });
      return (mwc.webhooks ?? []).every((w) => (w.clientConfig.caBundle ?? '').length > 0);
    }, 60_000, 200);
  } catch (e) {
    await stop();
    throw e;
  }
  log(`controller and webhook running as local processes (logs: ${opts.dir})`);
  return { controller, webhook, webhookUrl, controllerMetrics: `http://127.0.0.1:${cm}/metrics`, webhookMetrics: `http://127.0.0.1:${wm}/metrics`, logs, stop };
}
