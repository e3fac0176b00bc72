import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { IMPORT_ANNOTATION, NAMESPACE_ENABLED_LABEL, NAMESPACE_ENABLED_VALUE } from '../../src/constants.js';
import { pemBlocks } from '../../src/tls/serving.js';
import { adminKubeConfig, createTestNamespace } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
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
    expect(metricValue(text, 'multicluster_service_account_webhook_certificate_rotations_total', 'what="rotate-ca"')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'multicluster_service_account_webhook_certificate_rotations_total', 'what="issue-certificate"')).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'multicluster_service_account_webhook_certificate_reloads_total', '')).toBeGreaterThanOrEqual(4);
    console.log(`rotation: ${admitted} admissions, 0 failures, ${servingCerts.size} serving certificates, ${cas.size} CAs`);

    // The published bundle holds the current CA (and the previous one during the overlap).
    const mwc = await admission.readMutatingWebhookConfiguration({ name: mwcName });
    const bundle = Buffer.from(mwc.webhooks![0]!.clientConfig.caBundle!, 'base64').toString('utf8');
    const secret = await core.readNamespacedSecret({ namespace: install, name: 'multicluster-service-account-webhook-tls' });
    const currentCa = new X509Certificate(Buffer.from(secret.data!['ca.crt']!, 'base64').toString('utf8')).fingerprint256;
    expect(pemBlocks(bundle).map((b) => new X509Certificate(b).fingerprint256)).toContain(currentCa);
  }, 90_000);
});
