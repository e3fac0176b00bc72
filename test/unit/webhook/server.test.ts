import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { BehaviorSubject } from 'rxjs';
import type { ServiceAccountImport } from '../../../src/api/import.js';
import { IMPORT_ANNOTATION } from '../../../src/constants.js';
import { silentLogger } from '../../../src/logger.js';
import { createCa, issueCertificate, type KeyPair } from '../../../src/tls/pki.js';
import type { ServingMaterial } from '../../../src/tls/serving.js';
import { createWebhookApp } from '../../../streams/webhook/app.js';
import { FileCertificates, type CertificateSource } from '../../../streams/webhook/certs.js';
import type { ImportLookup } from '../../../streams/webhook/lookup.js';
import { WebhookMetrics } from '../../../streams/webhook/metrics.js';
import { AdmissionPipeline } from '../../../streams/webhook/pipeline.js';
import { WebhookServer } from '../../../streams/webhook/server.js';
import { importObject } from './fixtures.js';

let ca: KeyPair;
const leaf = () => issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' });

beforeAll(async () => {
  ca = await createCa('server-test-ca');
});

const body = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-shutdown',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace: 'ns',
    object: { metadata: { name: 'p', annotations: { [IMPORT_ANNOTATION]: 'slow' } }, spec: { containers: [{ name: 'c' }] } },
  },
});

function post(port: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/mutate-pods', method: 'POST', ca: ca.certPem, agent: false, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The fingerprint of the certificate a fresh TLS connection is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem }, () => {
      const fp = s.getPeerX509Certificate()!.fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function serverWith(lookup: ImportLookup, certificates: CertificateSource) {
  const log = silentLogger();
  const metrics = new WebhookMetrics({ defaultMetrics: false });
  const pipeline = new AdmissionPipeline({ lookup, log });
  let server: WebhookServer | undefined = undefined;
  const app = createWebhookApp({ pipeline, metrics, log, draining: () => server?.isDraining ?? false });
  server = new WebhookServer({ app, listen: { host: '127.0.0.1', port: 0 }, metricsListen: { host: '127.0.0.1', port: 0 }, certificates, metrics, log, ready: () => true });
  return { server, pipeline };
}

describe('WebhookServer', () => {
  it('answers an admission in flight at shutdown, then stops accepting and closes', async () => {
    let release: (s: ServiceAccountImport) => void = () => undefined;
    let arrived: () => void = () => undefined;
    const reachedLookup = new Promise<void>((r) => (arrived = r));
    const lookup: ImportLookup = {
      get: () =>
        new Promise((r) => {
          release = r;
          arrived();
        }),
    };
    const material = await leaf();
    const subject = new BehaviorSubject<ServingMaterial | undefined>({ certPem: material.certPem, keyPem: material.keyPem });
    const { server, pipeline } = serverWith(lookup, { material$: subject, start: () => undefined, stop: () => undefined });
    await server.start();
    const port = server.webhookPort;
    expect((await fetch(`http://127.0.0.1:${server.metricsPort}/readyz`)).status).toBe(200);

    const inFlight = post(port);
    await reachedLookup; // the admission is in flight: the server is waiting on its lookup
    const stopped = server.shutdown(5000);
    expect(server.isReady()).toBe(false);
    await expect(post(port)).rejects.toThrow(); // no new connections
    release(importObject('ns', 'slow', true));
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.text).toContain('"uid":"u-shutdown"');
    expect(res.text).toContain('"allowed":true');
    await stopped;
    await pipeline.close();
  });

  it('hot-reloads certificate files (cert-manager style) without a restart', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-certs-'));
    try {
      const first = await leaf();
      writeFileSync(path.join(dir, 'tls.crt'), first.certPem);
      writeFileSync(path.join(dir, 'tls.key'), first.keyPem);
      const files = new FileCertificates(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'), silentLogger(), 50);
      const { server, pipeline } = serverWith({ get: () => Promise.resolve(undefined) }, files);
      await server.start();
      const port = server.webhookPort;
      expect(await servedFingerprint(port)).toBe(new X509Certificate(first.certPem).fingerprint256);

      const second = await leaf();
      // A half-written pair (new certificate, old key) is not loaded.
      writeFileSync(path.join(dir, 'tls.crt'), second.certPem);
      await new Promise((r) => setTimeout(r, 200));
      expect(await servedFingerprint(port)).toBe(new X509Certificate(first.certPem).fingerprint256);
      writeFileSync(path.join(dir, 'tls.key'), second.keyPem);
      const want = new X509Certificate(second.certPem).fingerprint256;
      const deadline = Date.now() + 5000;
      let served = '';
      while (Date.now() < deadline && (served = await servedFingerprint(port)) !== want) await new Promise((r) => setTimeout(r, 50));
      expect(served).toBe(want);
      await server.shutdown(1000);
      await pipeline.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
