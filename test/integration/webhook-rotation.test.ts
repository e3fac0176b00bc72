import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { IMPORT_ANNOTATION } from '../../src/constants.js';
import { pemBlocks } from '../../src/tls/serving.js';
import { adminKubeConfig, createTestNamespace } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../harness/install.js';
import { createImport, createWebhookConfiguration, selfManagedSetup, startWebhook, TEST_SCOPE_LABEL, type RunningWebhook } from './webhook-process.js';

const CLUSTER = 'cluster1';

function metricValue(text: string, name: string, labels: string): number {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('webhook certificate rotation under load', () => {
  let kc: KubeConfig;
  let webhook: RunningWebhook | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let enabled: string;
  let install: string;
  let mwcName: string;

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    const setup = await selfManagedSetup(CLUSTER, 'wh-rot-install', cleanups);
    const { scope, identity } = setup;
    install = setup.install;
    mwcName = setup.mwcName;
    // Short lifetimes: serving certificates renewed every ~4 s, the CA rolled over once at ~16 s.
    webhook = await startWebhook({
      cluster: CLUSTER,
      installNamespace: install,
      webhookConfigName: mwcName,
      kubeconfigPath: identity.kubeconfigPath,
      extra: ['--ca-validity=24s', '--cert-validity=6s', '--ca-propagation-delay=1500ms', '--cert-check-interval=250ms'],
    });
    cleanups.push(() => webhook!.stop());
    const mwc = await createWebhookConfiguration(kc, mwcName, webhook.port, scope);
    cleanups.push(mwc.delete);
    const on = await createTestNamespace(CLUSTER, 'wh-rot', { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE, [TEST_SCOPE_LABEL]: scope });
    cleanups.push(on.delete);
    enabled = on.name;
    await createImport(CLUSTER, enabled, 'steady', true);
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 60_000);

  it('admits every pod while serving certificates and the CA rotate', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const body = {
      metadata: { name: 'steady', annotations: { [IMPORT_ANNOTATION]: 'steady' } },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    };
    const admit = async () => {
      const pod = await core.createNamespacedPod({ namespace: enabled, body, dryRun: 'All' });
      return (pod.spec?.volumes ?? []).some((v) => v.name.startsWith('mcsa-steady-'));
    };
    await waitFor('the API server to call the webhook', admit, 60_000, 200);

    const servingCerts = new Set<string>();
    const cas = new Set<string>();
    const failures: string[] = [];
    let admitted = 0;
    const started = Date.now();
    const sampleCerts = async () => {
      const s = await core.readNamespacedSecret({ namespace: install, name: 'multicluster-service-account-webhook-tls' });
      servingCerts.add(s.data!['tls.crt']!);
      cas.add(s.data!['ca.crt']!);
    };
    // Two clients in parallel, back to back, for 22 s: past a CA rollover and several renewals.
    const client = async () => {
      while (Date.now() - started < 22_000) {
        try {
          if (await admit()) admitted++;
          else failures.push('admitted without the mount');
        } catch (e) {
          failures.push((e as Error).message.slice(0, 300));
        }
        await sampleCerts();
      }
    };
    await Promise.all([client(), client()]);

    expect(failures).toEqual([]);
    expect(admitted).toBeGreaterThan(50);
    expect(cas.size).toBeGreaterThanOrEqual(2);
    expect(servingCerts.size).toBeGreaterThanOrEqual(4);

    const text = await webhook!.metrics();
    expect(metricValue(text, 'mcsa_webhook_certificate_rotations_total', 'what="rotate-ca"')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'mcsa_webhook_certificate_rotations_total', 'what="issue-certificate"')).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'mcsa_webhook_certificate_reloads_total', '')).toBeGreaterThanOrEqual(4);
    console.log(`rotation: ${admitted} admissions, 0 failures, ${servingCerts.size} serving certificates, ${cas.size} CAs`);

    // The published bundle holds the current CA (and the previous one during the overlap).
    const mwc = await admission.readMutatingWebhookConfiguration({ name: mwcName });
    const bundle = Buffer.from(mwc.webhooks![0]!.clientConfig.caBundle!, 'base64').toString('utf8');
    const secret = await core.readNamespacedSecret({ namespace: install, name: 'multicluster-service-account-webhook-tls' });
    const currentCa = new X509Certificate(Buffer.from(secret.data!['ca.crt']!, 'base64').toString('utf8')).fingerprint256;
    expect(pemBlocks(bundle).map((b) => new X509Certificate(b).fingerprint256)).toContain(currentCa);
  }, 90_000);
});

/** The certificate the webhook serves now (a fresh TLS handshake), as PEM. */
function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.end();
      resolve(new X509Certificate(der));
    });
    socket.once('error', reject);
  });
}

describe('webhook TLS Secret lost under load', () => {
  let kc: KubeConfig;
  let webhook: RunningWebhook | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let enabled: string;
  let install: string;
  let mwcName: string;
  const PROPAGATION_MS = 3000;

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    const setup = await selfManagedSetup(CLUSTER, 'wh-lost-install', cleanups);
    install = setup.install;
    mwcName = setup.mwcName;
    webhook = await startWebhook({
      cluster: CLUSTER,
      installNamespace: install,
      webhookConfigName: mwcName,
      kubeconfigPath: setup.identity.kubeconfigPath,
      extra: [`--ca-propagation-delay=${PROPAGATION_MS}ms`, '--cert-check-interval=250ms'],
    });
    cleanups.push(() => webhook!.stop());
    const mwc = await createWebhookConfiguration(kc, mwcName, webhook.port, setup.scope);
    cleanups.push(mwc.delete);
    const on = await createTestNamespace(CLUSTER, 'wh-lost', { [NAMESPACE_ENABLED_LABEL]: NAMESPACE_ENABLED_VALUE, [TEST_SCOPE_LABEL]: setup.scope });
    cleanups.push(on.delete);
    enabled = on.name;
    await createImport(CLUSTER, enabled, 'steady', true);
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 60_000);

  it('admits every pod while the TLS Secret is deleted: the new CA is published before a certificate it signed is served', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const body = { metadata: { generateName: 'lost-', annotations: { [IMPORT_ANNOTATION]: 'steady' } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } };
    const admit = async () => {
      const pod = await core.createNamespacedPod({ namespace: enabled, body, dryRun: 'All' });
      return (pod.spec?.volumes ?? []).some((v) => v.name.startsWith('mcsa-steady-'));
    };
    await waitFor('the API server to call the webhook', admit, 60_000, 200);
    const bundleCas = async () => {
      const mwc = await admission.readMutatingWebhookConfiguration({ name: mwcName });
      return pemBlocks(Buffer.from(mwc.webhooks![0]!.clientConfig.caBundle ?? '', 'base64').toString('utf8')).map((b) => new X509Certificate(b));
    };
    const oldCa = (await bundleCas())[0]!;
    expect((await servedCertificate(webhook!.port)).checkIssued(oldCa)).toBe(true);

    const failures: string[] = [];
    let admitted = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        try {
          if (await admit()) admitted++;
          else failures.push('admitted without the mount');
        } catch (e) {
          failures.push((e as Error).message.slice(0, 300));
        }
      }
    };
    const clients = [client(), client()];
    try {
      await waitFor('a few admissions before the loss', async () => admitted >= 10, 30_000, 50);
      await core.deleteNamespacedSecret({ namespace: install, name: 'multicluster-service-account-webhook-tls' });
      // A new CA is created and published beside the old one; the old certificate is still served meanwhile.
      let newCa: { ca: X509Certificate; published: X509Certificate[] } | undefined;
      await waitFor('a new CA in the bundle', async () => {
        const s = await core.readNamespacedSecret({ namespace: install, name: 'multicluster-service-account-webhook-tls' }).catch(() => undefined);
        if (!s?.data?.['ca.crt']) return false;
        const ca = new X509Certificate(Buffer.from(s.data['ca.crt'], 'base64').toString('utf8'));
        if (ca.fingerprint256 === oldCa.fingerprint256) return false;
        const published = await bundleCas();
        if (published.some((c) => c.fingerprint256 === ca.fingerprint256)) newCa = { ca, published };
        return newCa !== undefined;
      }, 30_000, 50);
      if (!newCa) throw new Error('unreachable');
      expect(newCa.published.map((c) => c.fingerprint256)).toContain(oldCa.fingerprint256);
      const publishedAt = Date.now();
      expect((await servedCertificate(webhook!.port)).checkIssued(oldCa)).toBe(true);
      // After the propagation delay the webhook serves a certificate from the new CA.
      await waitFor('a certificate from the new CA', async () => (await servedCertificate(webhook!.port)).checkIssued(newCa!.ca), 30_000, 100);
      expect(Date.now() - publishedAt).toBeGreaterThanOrEqual(PROPAGATION_MS - 500);
      // And the old CA leaves the bundle once every replica can have switched.
      await waitFor('the old CA to leave the bundle', async () => (await bundleCas()).every((c) => c.fingerprint256 !== oldCa.fingerprint256), 30_000, 100);
      const admittedBefore = admitted;
      await waitFor('admissions after the switch', async () => admitted >= admittedBefore + 10, 30_000, 50);
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    expect(failures).toEqual([]);
    console.log(`TLS Secret lost: ${admitted} admissions, 0 failures`);
  }, 120_000);
});
