import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { adminKubeConfig, clusterInfo, createTestNamespace, kubectl, uniqueName } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { freePort } from '../harness/ports.js';
import { localRun, manifestContainer, startLocal } from '../harness/deployment.js';
import type { ManagedProcess } from '../harness/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MANIFESTS = path.join(ROOT, 'manifests/webhook');

/** The MutatingWebhookConfiguration of the manifests. */
export function manifestWebhookConfiguration(): V1MutatingWebhookConfiguration {
  return parse(readFileSync(path.join(MANIFESTS, 'mutatingwebhookconfiguration.yaml'), 'utf8')) as V1MutatingWebhookConfiguration;
}

export interface RunningWebhook {
  process: ManagedProcess;
  port: number;
  metricsPort: number;
  logFile: string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Runs `node --import tsx streams/webhook/main.ts` with the Deployment's args and env (self-managed
 * TLS, the Secret in `installNamespace`, the caBundle patched into `webhookConfigName`), listening
 * on loopback, and waits until /readyz says ready.
 */
export async function startWebhook(opts: {
  cluster: string;
  installNamespace: string;
  webhookConfigName: string;
  /** A kubeconfig with the webhook's own identity (see `webhookIdentity`); default: the admin one. */
  kubeconfigPath?: string;
  extra?: string[];
}): Promise<RunningWebhook> {
  const info = clusterInfo(opts.cluster);
  const kubeconfigArgs = opts.kubeconfigPath ? [`--kubeconfig=${opts.kubeconfigPath}`] : [`--kubeconfig=${info.kubeconfigPath}`, `--context=${info.name}`];
  const port = await freePort();
  const metricsPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-webhook-'));
  const logFile = path.join(dir, 'webhook.log');
  const run = localRun(manifestContainer('manifests/webhook/deployment.yaml', 'webhook'), {
    downwardEnv: { POD_NAMESPACE: opts.installNamespace },
    overrides: {
      '--listen-address': `127.0.0.1:${port}`,
      '--metrics-address': `127.0.0.1:${metricsPort}`,
      '--webhook-config-name': opts.webhookConfigName,
    },
    extra: [...kubeconfigArgs, '--extra-sans=127.0.0.1', ...(opts.extra ?? [])],
  });
  const proc = startLocal('webhook', run, logFile);
  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    return res.text();
  };
  const stop = async () => {
    await proc.stop(10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'the webhook to be ready',
      async () => {
        if (!proc.running) throw new Error(`webhook exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      60_000,
      200,
    );
  } catch (e) {
    const log = readFileSync(logFile, 'utf8').slice(-3000);
    await stop();
    throw new Error(`${(e as Error).message}\n${log}`);
  }
  return { process: proc, port, metricsPort, logFile, metrics, stop };
}

/** The label that scopes a test's webhook configuration to the test's own namespaces. */
export const TEST_SCOPE_LABEL = 'mcsa-webhook-test';

/**
 * The manifest's webhook configuration, renamed, pointed at `https://127.0.0.1:<port>/mutate-pods`
 * (no caBundle: the webhook publishes it), and narrowed to namespaces labelled `<TEST_SCOPE_LABEL>=<scope>`.
 */
export async function createWebhookConfiguration(kc: KubeConfig, name: string, port: number, scope: string) {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const mwc = manifestWebhookConfiguration();
  mwc.metadata = { ...mwc.metadata, name };
  for (const w of mwc.webhooks ?? []) {
    w.clientConfig = { url: `https://127.0.0.1:${port}/mutate-pods` };
    w.namespaceSelector = {
      ...w.namespaceSelector,
      matchExpressions: [...(w.namespaceSelector?.matchExpressions ?? []), { key: TEST_SCOPE_LABEL, operator: 'In', values: [scope] }],
    };
  }
  await api.createMutatingWebhookConfiguration({ body: mwc });
  return {
    name,
    delete: async () => {
      await api.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
    },
  };
}

/** Applies the ServiceAccountImport CRD (idempotent) and waits until it is served. */
export async function ensureCrd(cluster: string): Promise<void> {
  const info = clusterInfo(cluster);
  const r = await kubectl(info.kubeconfigPath, ['apply', '-f', path.join(ROOT, 'manifests/crd/serviceaccountimports.yaml')]);
  if (r.code !== 0) throw new Error(`cannot apply the CRD: ${r.stderr}`);
  const w = await kubectl(info.kubeconfigPath, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/serviceaccountimports.multicluster.admiralty.io']);
  if (w.code !== 0) throw new Error(`CRD not established: ${w.stderr}`);
}

/** A kubectl manifest for an import, with `Ready` status when asked (written through the status subresource). */
export async function createImport(cluster: string, namespace: string, name: string, ready: boolean | undefined): Promise<void> {
  const info = clusterInfo(cluster);
  const body = {
    apiVersion: 'multicluster.admiralty.io/v1alpha1',
    kind: 'ServiceAccountImport',
    metadata: { name, namespace },
    spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' },
  };
  const r = await kubectl(info.kubeconfigPath, ['create', '-f', '-'], JSON.stringify(body));
  if (r.code !== 0) throw new Error(`cannot create import ${namespace}/${name}: ${r.stderr}`);
  if (ready === undefined) return;
  const status = {
    status: {
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          reason: ready ? 'TokenIssued' : 'ClusterNotFound',
          message: ready ? 'token issued' : 'cluster "cluster9" is not registered',
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
    },
  };
  const p = await kubectl(info.kubeconfigPath, ['patch', 'sai', name, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
  if (p.code !== 0) throw new Error(`cannot set the status of import ${namespace}/${name}: ${p.stderr}`);
}

export function scopeName(): string {
  return uniqueName('wh');
}

/**
 * What a self-managed webhook test starts from: the CRD, a scope, an install namespace, the name
 * of its webhook configuration and the webhook's own identity (manifest RBAC, a token kubeconfig).
 * Whatever it creates is pushed onto `cleanups` (run them last first).
 */
export async function selfManagedSetup(cluster: string, namespacePrefix: string, cleanups: (() => Promise<void>)[]) {
  await ensureCrd(cluster);
  const scope = scopeName();
  const ns = await createTestNamespace(cluster, namespacePrefix);
  cleanups.push(ns.delete);
  const install = ns.name;
  const mwcName = `mcsa-${scope}`;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mcsa-wh-id-'));
  cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const identity = await webhookIdentity(cluster, install, mwcName, tmp);
  cleanups.push(identity.delete);
  return { scope, install, mwcName, identity };
}

/** All documents of a multi-document YAML string, as objects (for kubectl -f -). */
export function yamlDocuments(text: string): unknown[] {
  return parseAllDocuments(text).map((d) => d.toJSON() as unknown);
}

interface RbacObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { resourceNames?: string[]; resources?: string[] }[];
  roleRef?: { name: string };
  subjects?: { namespace?: string }[];
}

/**
 * The webhook's ServiceAccount and RBAC from `manifests/webhook/rbac.yaml`, moved to
 * `installNamespace` (cluster-scoped names suffixed, the webhook configuration name swapped in),
 * and a kubeconfig holding a token for that ServiceAccount: the process then runs with exactly
 * the manifest's permissions.
 */
export async function webhookIdentity(cluster: string, installNamespace: string, webhookConfigName: string, dir: string) {
  const info = clusterInfo(cluster);
  const docs = yamlDocuments(readFileSync(path.join(MANIFESTS, 'rbac.yaml'), 'utf8')) as RbacObject[];
  const suffix = installNamespace;
  const clusterScoped: { kind: string; name: string }[] = [];
  let serviceAccount = '';
  for (const d of docs) {
    if (d.kind === 'ServiceAccount') serviceAccount = d.metadata.name;
    if (d.kind === 'ClusterRole' || d.kind === 'ClusterRoleBinding') {
      d.metadata.name = `${d.metadata.name}-${suffix}`;
      clusterScoped.push({ kind: d.kind, name: d.metadata.name });
    } else d.metadata.namespace = installNamespace;
    if (d.kind === 'ClusterRoleBinding') d.roleRef!.name = `${d.roleRef!.name}-${suffix}`;
    for (const s of d.subjects ?? []) s.namespace = installNamespace;
    for (const r of d.rules ?? []) if (r.resources?.includes('mutatingwebhookconfigurations')) r.resourceNames = [webhookConfigName];
  }
  const applied = await kubectl(info.kubeconfigPath, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));
  if (applied.code !== 0) throw new Error(`cannot apply the webhook RBAC: ${applied.stderr}`);
  const kc = adminKubeConfig(cluster);
  const tr = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace: installNamespace,
    name: serviceAccount,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  const kubeconfigPath = path.join(dir, 'webhook.kubeconfig');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: info.server, 'certificate-authority-data': Buffer.from(info.caPem).toString('base64') } }],
    users: [{ name: 'webhook', user: { token: tr.status!.token } }],
    contexts: [{ name: 'webhook', context: { cluster, user: 'webhook', namespace: installNamespace } }],
    'current-context': 'webhook',
  };
  writeFileSync(kubeconfigPath, JSON.stringify(kubeconfig), { mode: 0o600 });
  return {
    kubeconfigPath,
    serviceAccount: `system:serviceaccount:${installNamespace}:${serviceAccount}`,
    delete: async () => {
      for (const o of clusterScoped) await kubectl(info.kubeconfigPath, ['delete', o.kind.toLowerCase(), o.name, '--ignore-not-found']);
    },
  };
}
