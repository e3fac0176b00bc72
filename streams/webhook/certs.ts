import { readFile } from 'node:fs/promises';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeError, httpStatusOf } from '../../src/describe-error.js';
import * as t from 'io-ts';
import { BehaviorSubject, type Observable } from 'rxjs';
import { decode } from '../../src/api/decode.js';
import type { Logger } from '../../src/logger.js';
import {
  applyRotationStep,
  caBundle,
  issuerOf,
  nextRotationStep,
  TLS_SECRET_KEYS,
  type RotationPolicy,
  type StoredTls,
} from '../../src/tls/rotation.js';
import { checkServingMaterial, fingerprint, pemBlocks, type ServingMaterial } from '../../src/tls/serving.js';
import { realClock, type Cancel, type Clock } from '../clock.js';
import type { WebhookMetrics } from './metrics.js';

/** Where the serving certificate comes from; emits each new valid certificate and key. */
export interface CertificateSource {
  readonly material$: Observable<ServingMaterial | undefined>;
  start(): void;
  stop(): void;
}


/**
 * Certificate and key files (cert-manager's `tls.crt`/`tls.key`, mounted from a Secret): read at
 * start and re-read every `intervalMs`; a changed pair is emitted once both files agree.
 */
export class FileCertificates implements CertificateSource {
  private readonly subject = new BehaviorSubject<ServingMaterial | undefined>(undefined);
  readonly material$ = this.subject.asObservable();
  private cancel: Cancel | undefined;
  private stopped = false;

  constructor(
    private readonly certFile: string,
    private readonly keyFile: string,
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly clock: Clock = realClock,
  ) {}

  start(): void {
    this.stopped = false;
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  private async poll(): Promise<void> {
    try {
      const [certPem, keyPem] = await Promise.all([readFile(this.certFile, 'utf8'), readFile(this.keyFile, 'utf8')]);
      const current = this.subject.value;
      if (!current || current.certPem !== certPem || current.keyPem !== keyPem) {
        const { notAfter } = checkServingMaterial({ certPem, keyPem });
        this.log.info('serving certificate loaded from files', { certFile: this.certFile, fingerprint: fingerprint(certPem), notAfter });
        this.subject.next({ certPem, keyPem });
      }
    } catch (e) {
      this.log.warn('cannot load the serving certificate files (will retry)', { certFile: this.certFile, keyFile: this.keyFile, error: (e as Error).message });
    }
    if (!this.stopped) this.cancel = this.clock.schedule(() => void this.poll(), this.intervalMs);
  }
}

const SecretBody = t.type({
  metadata: t.partial({ resourceVersion: t.string }),
  data: t.union([t.record(t.string, t.string), t.undefined, t.null]),
});

interface SelfManagedOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  secretName: string;
  /** The MutatingWebhookConfiguration whose webhooks get the CA bundle; none → only the Secret is managed. */
  webhookConfigName?: string;
  policy: RotationPolicy;
  checkIntervalMs: number;
  log: Logger;
  metrics?: WebhookMetrics;
  clock?: Clock;
  /**
   * Whether this replica may write (the Lease holder). Without it every replica may write; the
   * writes are conditional either way, so a leadership hand-over never makes two writers clash.
   */
  isLeader?: () => boolean;
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function unb64(s: string | undefined): string | undefined {
  return s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8');
}

/**
 * Self-managed TLS: a CA and a serving certificate kept in a Secret, the CA bundle kept in the
 * webhook configuration, both rotated before expiry. Every replica runs this loop and serves what
 * the Secret holds; writes are create-if-absent or conditional on the resourceVersion read, so
 * replicas never overwrite each other (the loser of a race re-reads and finds nothing to do).
 */
export class SelfManagedCertificates implements CertificateSource {
  private readonly subject = new BehaviorSubject<ServingMaterial | undefined>(undefined);
  readonly material$ = this.subject.asObservable();
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private readonly clock: Clock;
  private cancel: Cancel | undefined;
  private stopped = true;
  private running: Promise<void> | undefined;
  /** When this replica first saw each CA (by fingerprint) in the bundle of every webhook of the configuration. */
  private readonly seenPublished = new Map<string, number>();
  /** Fingerprint of the CA that issued the certificate this replica serves. */
  private servedIssuer: string | undefined;
  /** The held-back certificate last logged about (logged once per certificate). */
  private holdingLogged: string | undefined;
  private missingConfigLogged = false;

  constructor(private readonly opts: SelfManagedOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.admission = opts.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.clock = opts.clock ?? realClock;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  /** Resolves when the tick in progress (if any) has finished. */
  async idle(): Promise<void> {
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.cancel = this.clock.schedule(() => {
      this.running = this.tick()
        .then((next) => this.schedule(next))
        .catch((e: unknown) => {
          this.opts.log.warn('TLS maintenance failed (will retry)', { secret: `${this.opts.namespace}/${this.opts.secretName}`, error: describeError(e) });
          this.schedule(Math.min(this.opts.checkIntervalMs, 5000));
        });
    }, delayMs);
  }

  private async readSecret(): Promise<{ stored: StoredTls | undefined; resourceVersion?: string } | undefined> {
    let raw: unknown;
    try {
      raw = await this.core.readNamespacedSecret({ namespace: this.opts.namespace, name: this.opts.secretName });
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw e;
    }
    const r = decode(SecretBody, raw);
    if (!r.ok) return { stored: undefined };
    const data = r.value.data ?? {};
    const get = (k: string) => unb64(data[k]);
    const caCertPem = get(TLS_SECRET_KEYS.caCert);
    const caKeyPem = get(TLS_SECRET_KEYS.caKey);
    const tlsCertPem = get(TLS_SECRET_KEYS.tlsCert);
    const tlsKeyPem = get(TLS_SECRET_KEYS.tlsKey);
    const previousCaPem = get(TLS_SECRET_KEYS.previousCa);
    const rv = r.value.metadata.resourceVersion;
    if (!caCertPem || !caKeyPem || !tlsCertPem || !tlsKeyPem) return { stored: undefined, ...(rv ? { resourceVersion: rv } : {}) };
    const stored: StoredTls = { caCertPem, caKeyPem, tlsCertPem, tlsKeyPem, ...(previousCaPem ? { previousCaPem } : {}) };
    return { stored, ...(rv ? { resourceVersion: rv } : {}) };
  }

  private secretBody(s: StoredTls, resourceVersion?: string) {
    const data: Record<string, string> = {
      [TLS_SECRET_KEYS.caCert]: b64(s.caCertPem),
      [TLS_SECRET_KEYS.caKey]: b64(s.caKeyPem),
      [TLS_SECRET_KEYS.tlsCert]: b64(s.tlsCertPem),
      [TLS_SECRET_KEYS.tlsKey]: b64(s.tlsKeyPem),
    };
    if (s.previousCaPem) data[TLS_SECRET_KEYS.previousCa] = b64(s.previousCaPem);
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: this.opts.secretName,
        namespace: this.opts.namespace,
        labels: { 'app.kubernetes.io/name': 'multicluster-service-account', 'app.kubernetes.io/component': 'webhook' },
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      data,
    };
  }

  /** One maintenance pass; resolves with the delay until the next one (short after a write or while waiting on the configuration). */
  async tick(): Promise<number> {
    const interval = this.opts.checkIntervalMs;
    const soon = Math.min(interval, 2000);
    const now = this.clock.now();
    const read = await this.readSecret();
    const stored = read?.stored;
    const caFp = stored ? fingerprint(stored.caCertPem) : undefined;
    const since = caFp ? this.seenPublished.get(caFp) : undefined;
    const step = nextRotationStep(stored, now, since, this.opts.policy);
    const leader = this.opts.isLeader?.() ?? true;
    if (step.kind !== 'none' && !leader) {
      this.opts.log.debug('TLS Secret needs a change; waiting for the leader', { step: step.kind });
    } else if (step.kind !== 'none') {
      // Material lost: the new bundle keeps the CAs published now, which the replicas' current certificates chain to.
      const published = step.kind === 'create' && this.opts.webhookConfigName ? await this.publishedBundle() : undefined;
      const next = await applyRotationStep(step, stored, now, this.opts.policy, published);
      const ref = `${this.opts.namespace}/${this.opts.secretName}`;
      try {
        if (read === undefined) await this.core.createNamespacedSecret({ namespace: this.opts.namespace, body: this.secretBody(next!) });
        else await this.core.replaceNamespacedSecret({ namespace: this.opts.namespace, name: this.opts.secretName, body: this.secretBody(next!, read.resourceVersion) });
      } catch (e) {
        if (httpStatusOf(e) === 409) {
          this.opts.log.debug('another replica wrote the TLS Secret first', { secret: ref, step: step.kind });
          return 50;
        }
        throw e;
      }
      this.opts.metrics?.certificateRotations.inc({ what: step.kind });
      this.opts.log.info('TLS Secret updated', { secret: ref, step: step.kind, reason: step.reason, caFingerprint: fingerprint(next!.caCertPem) });
      return 50;
    }
    if (!stored) return soon;
    if (!this.opts.webhookConfigName) {
      const current = this.subject.value;
      if (!current || current.certPem !== stored.tlsCertPem) this.subject.next({ certPem: stored.tlsCertPem, keyPem: stored.tlsKeyPem });
      return interval;
    }
    const publication = await this.publishBundle(stored, caFp!, now, leader);
    // No configuration: no API server calls this webhook yet, any certificate is as good.
    const serving = publication.missing ? this.serve(stored, undefined) : this.serveWhenPublished(stored, now);
    if (publication.patched) return 50;
    if (publication.since === undefined || step.kind !== 'none' || !serving) return soon; // waiting on the configuration, the leader or the delay
    if (step.waiting) return Math.max(50, Math.min(interval, publication.since + this.opts.policy.propagationDelayMs - now));
    return interval;
  }

  /**
   * Serves the stored certificate once API servers can verify it: its issuing CA is in every
   * webhook's bundle, and — when this replica already serves a certificate from another CA — has
   * been there for the propagation delay (API servers pick up a changed configuration a little
   * later). Until then the current certificate stays. A certificate from the CA already served
   * (a renewal) switches at once. Returns whether the stored certificate is served.
   */
  private serveWhenPublished(stored: StoredTls, now: number): boolean {
    const current = this.subject.value;
    if (current && current.certPem === stored.tlsCertPem) return true;
    const issuer = issuerOf(stored.tlsCertPem, caBundle(stored));
    const issuerFp = issuer ? fingerprint(issuer) : undefined;
    const seen = issuerFp ? this.seenPublished.get(issuerFp) : undefined;
    const currentExpiring = current !== undefined && notAfter(current) - now < this.opts.policy.propagationDelayMs;
    const ready = seen !== undefined && (!current || issuerFp === this.servedIssuer || now - seen >= this.opts.policy.propagationDelayMs);
    if (!ready && !currentExpiring) {
      if (this.holdingLogged !== stored.tlsCertPem) {
        this.holdingLogged = stored.tlsCertPem;
        this.opts.log.info('new serving certificate held back until its CA is published', {
          caFingerprint: issuerFp,
          published: seen !== undefined,
          propagationDelayMs: this.opts.policy.propagationDelayMs,
        });
      }
      return false;
    }
    return this.serve(stored, issuerFp);
  }

  private serve(stored: StoredTls, issuerFp: string | undefined): boolean {
    const current = this.subject.value;
    if (current && current.certPem === stored.tlsCertPem) return true;
    this.servedIssuer = issuerFp ?? fingerprintOfIssuer(stored);
    this.subject.next({ certPem: stored.tlsCertPem, keyPem: stored.tlsKeyPem });
    return true;
  }

  /** The CA bundles of the configuration's webhooks (PEM, concatenated), or undefined without one. */
  private async publishedBundle(): Promise<string | undefined> {
    try {
      const mwc = await this.admission.readMutatingWebhookConfiguration({ name: this.opts.webhookConfigName! });
      return (mwc.webhooks ?? []).map((w) => unb64(w.clientConfig.caBundle) ?? '').join('');
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw e;
    }
  }

  /**
   * Puts the bundle into every webhook of the configuration, with a JSON Patch that changes
   * nothing but `webhooks[i].clientConfig.caBundle` (conditional on the resourceVersion read, so
   * the indexes are the ones read). Records when this replica first saw each CA in every
   * webhook's bundle. `since`: when it first saw the current CA published (undefined while not).
   */
  private async publishBundle(stored: StoredTls, caFp: string, now: number, mayWrite: boolean): Promise<{ since: number | undefined; patched: boolean; missing?: true }> {
    const name = this.opts.webhookConfigName!;
    let mwc;
    try {
      mwc = await this.admission.readMutatingWebhookConfiguration({ name });
    } catch (e) {
      if (httpStatusOf(e) === 404) {
        if (!this.missingConfigLogged) this.opts.log.warn('webhook configuration not found: cannot publish the CA bundle yet', { webhookConfiguration: name });
        this.missingConfigLogged = true;
        this.seenPublished.clear();
        return { since: undefined, patched: false, missing: true };
      }
      throw e;
    }
    this.missingConfigLogged = false;
    const want = b64(caBundle(stored));
    const webhooks = mwc.webhooks ?? [];
    this.recordPublished(webhooks.map((w) => unb64(w.clientConfig.caBundle) ?? ''), now);
    const since = this.seenPublished.get(caFp);
    const stale = webhooks.map((w, i) => ({ i, bundle: w.clientConfig.caBundle })).filter((w) => w.bundle !== want);
    if (stale.length === 0 || !mayWrite) return { since, patched: false };
    const ops = [
      { op: 'test', path: '/metadata/resourceVersion', value: mwc.metadata?.resourceVersion },
      ...stale.map((w) => ({ op: 'add', path: `/webhooks/${w.i}/clientConfig/caBundle`, value: want })),
    ];
    try {
      await this.admission.patchMutatingWebhookConfiguration({ name, body: ops });
      this.opts.log.info('CA bundle published in the webhook configuration', { webhookConfiguration: name, webhooks: stale.length, caFingerprint: caFp });
      return { since, patched: true };
    } catch (e) {
      const code = httpStatusOf(e);
      if (code === 409 || code === 422) return { since: undefined, patched: false }; // changed under us: next pass
      throw e;
    }
  }

  /** Keeps, for each CA in every one of `bundles`, when this replica first saw it there. */
  private recordPublished(bundles: string[], now: number): void {
    const inAll = new Set<string>();
    if (bundles.length > 0) {
      const per = bundles.map((b) => new Set(pemBlocks(b).flatMap((pem) => {
        try {
          return [fingerprint(pem)];
        } catch {
          return [];
        }
      })));
      for (const fp of per[0]!) if (per.every((set) => set.has(fp))) inAll.add(fp);
    }
    for (const fp of [...this.seenPublished.keys()]) if (!inAll.has(fp)) this.seenPublished.delete(fp);
    for (const fp of inAll) if (!this.seenPublished.has(fp)) this.seenPublished.set(fp, now);
  }
}

function fingerprintOfIssuer(stored: StoredTls): string | undefined {
  const issuer = issuerOf(stored.tlsCertPem, caBundle(stored));
  return issuer ? fingerprint(issuer) : undefined;
}

function notAfter(m: ServingMaterial): number {
  return checkServingMaterial(m).notAfter.getTime();
}
