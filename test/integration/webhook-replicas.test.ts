import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api, CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { adminKubeConfig } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { createWebhookConfiguration, selfManagedSetup, startWebhook, type RunningWebhook } from './webhook-process.js';

const CLUSTER = 'cluster1';
const SECRET = 'multicluster-service-account-webhook-tls';

function metric(text: string, line: string): number {
  const l = text.split('\n').find((x) => x.startsWith(`${line} `));
  return l ? Number(l.split(' ').pop()) : 0;
}

/** The fingerprint of the certificate a replica serves to a new connection. */
function served(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()!.fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

describe('two self-managed replicas', () => {
  let kc: KubeConfig;
  const replicas: RunningWebhook[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let install: string;
  let mwcName: string;

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    const setup = await selfManagedSetup(CLUSTER, 'wh-rep-install', cleanups);
    const { scope, identity } = setup;
    install = setup.install;
    mwcName = setup.mwcName;
    // The configuration exists first, as after `kubectl apply -f install.yaml`.
    const mwc = await createWebhookConfiguration(kc, mwcName, 1, scope);
    cleanups.push(mwc.delete);
    const started = await Promise.all(
      [0, 1].map(() => startWebhook({ cluster: CLUSTER, installNamespace: install, webhookConfigName: mwcName, kubeconfigPath: identity.kubeconfigPath })),
    );
    for (const r of started) {
      replicas.push(r);
      cleanups.push(() => r.stop());
    }
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 60_000);

  it('share one CA and serving certificate written once, and publish one CA bundle', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const secret = await core.readNamespacedSecret({ namespace: install, name: SECRET });
    const pem = (k: string) => Buffer.from(secret.data![k]!, 'base64').toString('utf8');
    const leaf = new X509Certificate(pem('tls.crt')).fingerprint256;
    for (const r of replicas) expect(await served(r.port)).toBe(leaf);

    let bundle = '';
    await waitFor('the CA bundle in the webhook configuration', async () => {
      const mwc = await admission.readMutatingWebhookConfiguration({ name: mwcName });
      bundle = Buffer.from(mwc.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
      return bundle !== '';
    }, 30_000);
    expect(bundle).toBe(pem('ca.crt'));

    const texts = await Promise.all(replicas.map((r) => r.metrics()));
    const creates = texts.map((t) => metric(t, 'mcsa_webhook_certificate_rotations_total{what="create"}'));
    expect(creates.reduce((a, b) => a + b, 0)).toBe(1);
    const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: install, name: 'multicluster-service-account-webhook' });
    expect(lease.spec?.holderIdentity).toBeTruthy();
  });
});
