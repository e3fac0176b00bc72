import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { BehaviorSubject, filter, firstValueFrom, skip, Subject, throwError, timeout, type Observable } from 'rxjs';
import type { ServiceAccountImport } from '../../../src/api/import.js';
import { IMPORT_ANNOTATION } from '../../../src/constants.js';
import { createCa, issueCertificate } from '../../../src/tls/pki.js';
import type { ServingMaterial } from '../../../src/tls/serving.js';
import { realClock, type Clock } from '../../../streams/clock.js';
import { createWebhookApp } from '../../../streams/webhook/app.js';
import { FileCertificates, type CertificateSource } from '../../../streams/webhook/certs.js';
import type { ImportLookup } from '../../../streams/webhook/lookup.js';
import { WebhookMetrics } from '../../../streams/webhook/metrics.js';
import { AdmissionPipeline } from '../../../streams/webhook/pipeline.js';
import { WebhookServer } from '../../../streams/webhook/server.js';
import { silentLogger } from './doubles.js';
import { importObject } from './fixtures.js';

let ca: Awaited<ReturnType<typeof createCa>>;
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

/** The first value of `source` within `ms`, or a failure naming what did not happen. */
function within<T>(source: Observable<T>, ms: number, what: string): Promise<T> {
  return firstValueFrom(source.pipe(timeout({ first: ms, with: () => throwError(() => new Error(`${what}: not within ${ms} ms`)) })));
}

/** The real clock, telling each time something schedules on it (FileCertificates: a poll has finished). */
function announcingClock(): { clock: Clock; scheduled: Subject<void> } {
  const scheduled = new Subject<void>();
  return { clock: { now: () => realClock.now(), schedule: (fn, ms) => (scheduled.next(), realClock.schedule(fn, ms)) }, scheduled };
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
      const { clock, scheduled } = announcingClock();
      const files = new FileCertificates(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'), silentLogger(), 50, clock);
      const { server, pipeline } = serverWith({ get: () => Promise.resolve(undefined) }, files);
      await server.start();
      const port = server.webhookPort;
      expect(await servedFingerprint(port)).toBe(new X509Certificate(first.certPem).fingerprint256);

      const second = await leaf();
      // A half-written pair (new certificate, old key) is not loaded. The second poll to finish
      // after the write is one that started after it: it read the half-written pair.
      writeFileSync(path.join(dir, 'tls.crt'), second.certPem);
      await within(scheduled.pipe(skip(1)), 5000, 'a poll of the files after the write');
      expect((await firstValueFrom(files.material$))?.certPem).toBe(first.certPem);
      expect(await servedFingerprint(port)).toBe(new X509Certificate(first.certPem).fingerprint256);
      // The whole pair: loaded, and served on the next handshake (the server reloads as it is emitted).
      const loaded = within(files.material$.pipe(filter((m) => m?.certPem === second.certPem)), 5000, 'the new pair loaded');
      writeFileSync(path.join(dir, 'tls.key'), second.keyPem);
      expect((await loaded)?.keyPem).toBe(second.keyPem);
      expect(await servedFingerprint(port)).toBe(new X509Certificate(second.certPem).fingerprint256);
      await server.shutdown(1000);
      await pipeline.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
