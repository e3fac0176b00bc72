import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceAccountImport } from '../../../src/api/import.js';
import { AdmissionPipeline } from '../../../streams/webhook/pipeline.js';
import { createWebhookApp } from '../../../streams/webhook/app.js';
import type { ImportLookup } from '../../../streams/webhook/lookup.js';
import { WebhookMetrics } from '../../../streams/webhook/metrics.js';
import { silentLogger, StaticImportLookup } from './doubles.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/admission');

/** The recorded reviews, by case name. */
export function recordedReviews(): { name: string; file: string; review: { request: { namespace: string; uid: string } } & Record<string, unknown> }[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.review.json'))
    .sort()
    .map((f) => ({ name: f.replace(/\.review\.json$/, ''), file: path.join(FIXTURES, f), review: JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')) as never }));
}

export function importObject(namespace: string, name: string, ready: boolean | undefined): ServiceAccountImport {
  return {
    metadata: { name, namespace, generation: 1 },
    spec: { clusterName: 'cluster2', namespace: 'default', name: 'pod-lister' },
    ...(ready === undefined
      ? {}
      : {
          status: {
            conditions: [
              ready
                ? { type: 'Ready', status: 'True' as const, reason: 'TokenIssued', message: 'token issued' }
                : { type: 'Ready', status: 'False' as const, reason: 'ClusterNotFound', message: 'cluster "cluster9" is not registered' },
            ],
          },
        }),
  };
}

/** The imports the fixtures were recorded against: two Ready, one not Ready, one with a long dotted name. */
export function fixtureImports(namespace: string): ImportLookup {
  return new StaticImportLookup([
    importObject(namespace, 'cluster2-pod-lister', true),
    importObject(namespace, 'cluster3.reader', true),
    importObject(namespace, 'pending-import', false),
    importObject(namespace, `${'a'.repeat(60)}.${'b'.repeat(60)}.example`, true),
  ]);
}

export function testApp(lookup: ImportLookup, opts: { maxBodyBytes?: number } = {}) {
  const log = silentLogger();
  const metrics = new WebhookMetrics({ defaultMetrics: false });
  const pipeline = new AdmissionPipeline({ lookup, log, concurrency: 16, timeoutMs: 2000 });
  const app = createWebhookApp({ pipeline, metrics, log, ...opts });
  return { app, pipeline, metrics };
}

/** A federated import (ADR 0022) as the webhook caches it: Ready with its audience and lifetime in status, or not reconciled yet. */
export function federatedImportObject(namespace: string, name: string, ready: boolean, audience = 'multicluster.admiralty.io/cluster2'): ServiceAccountImport {
  return {
    metadata: { name, namespace, generation: 1 },
    spec: { mode: 'Federated', clusterName: 'cluster2' },
    status: ready
      ? { conditions: [{ type: 'Ready', status: 'True', reason: 'Federated', message: 'ok' }], audience, expirationSeconds: 3600 }
      : { conditions: [{ type: 'Ready', status: 'False', reason: 'ClusterNotFound', message: 'federated source "cluster2" is not known' }] },
  };
}
