import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LookupCounters } from './lookup.js';

/** The webhook's Prometheus metrics (controller-runtime names where one exists). */
export class WebhookMetrics implements LookupCounters {
  readonly registry = new Registry();
  readonly requests: Counter<'webhook' | 'code'>;
  readonly latency: Histogram<'webhook'>;
  readonly inFlight: Gauge<'webhook'>;
  readonly decisions: Counter<'webhook' | 'decision' | 'mutated'>;
  readonly admissionDuration: Histogram<'outcome'>;
  readonly lookups: Counter<'source' | 'result'>;
  readonly lookupsInFlight: Gauge<'state'>;
  readonly certificateNotAfter: Gauge;
  readonly certificateReloads: Counter;
  readonly certificateRotations: Counter<'what'>;
  readonly buildInfo: Gauge<'component' | 'version'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'controller_runtime_webhook_requests_total',
      help: 'Total number of admission requests by HTTP status code.',
      labelNames: ['webhook', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'controller_runtime_webhook_latency_seconds',
      help: 'Histogram of the latency of processing admission requests.',
      labelNames: ['webhook'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.buildInfo = new Gauge({
      name: 'mcsa_build_info',
      help: 'Always 1; the labels say which component and version of multicluster-service-account runs.',
      labelNames: ['component', 'version'],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'controller_runtime_webhook_requests_in_flight',
      help: 'Current number of admission requests being served.',
      labelNames: ['webhook'],
      registers,
    });
    this.decisions = new Counter({
      name: 'mcsa_webhook_admissions_total',
      help: 'Admission decisions: allowed or denied, and whether the pod was mutated.',
      labelNames: ['webhook', 'decision', 'mutated'],
      registers,
    });
    this.admissionDuration = new Histogram({
      name: 'mcsa_webhook_admission_duration_seconds',
      help: 'Time from a request to its answer, by outcome: mutated (a pod got its mounts), allowed, denied, or rejected (HTTP 4xx). Tells the latency of ordinary admissions apart from that of refused requests.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.lookups = new Counter({
      name: 'mcsa_webhook_import_lookups_total',
      help: 'ServiceAccountImport lookups by source (watch cache or API GET on a miss) and result.',
      labelNames: ['source', 'result'],
      registers,
    });
    this.lookupsInFlight = new Gauge({
      name: 'mcsa_webhook_import_lookups_in_flight',
      help: 'API lookups of ServiceAccountImports missing from the watch cache: running (holding one of --max-lookups slots) or waiting for a slot.',
      labelNames: ['state'],
      registers,
    });
    this.certificateNotAfter = new Gauge({
      name: 'mcsa_webhook_certificate_expiration_timestamp_seconds',
      help: 'Expiry (Unix time) of the serving certificate in use.',
      registers,
    });
    this.certificateReloads = new Counter({
      name: 'mcsa_webhook_certificate_reloads_total',
      help: 'Times the serving certificate was (re)loaded into the TLS server.',
      registers,
    });
    this.certificateRotations = new Counter({
      name: 'mcsa_webhook_certificate_rotations_total',
      help: 'Self-managed TLS writes by this replica: new CA or new serving certificate.',
      labelNames: ['what'],
      registers,
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  lookup(source: 'cache' | 'api', result: 'found' | 'missing' | 'error'): void {
    this.lookups.inc({ source, result });
  }

  lookupSlots(running: number, waiting: number): void {
    this.lookupsInFlight.set({ state: 'running' }, running);
    this.lookupsInFlight.set({ state: 'waiting' }, waiting);
  }
}
