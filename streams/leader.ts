import { ApiException, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import type { Logger } from '../src/logger.js';
import { realClock, type Clock } from './clock.js';
import { kubeHttp } from './kube-http.js';

/** Lost a create/replace race (HTTP 409): someone else wrote the Lease first. */
export class LeaseConflict extends Error {
  override readonly name = 'LeaseConflict';
}

/** The three Lease calls the elector makes; `kubeLeaseClient` is the real one. */
interface LeaseClient {
  /** The Lease, or undefined when it does not exist. */
  get(): Promise<V1Lease | undefined>;
  /** Throws LeaseConflict when it already exists. */
  create(lease: V1Lease): Promise<V1Lease>;
  /** Throws LeaseConflict when `lease.metadata.resourceVersion` is stale. */
  replace(lease: V1Lease): Promise<V1Lease>;
}

interface LeaderElectionOptions {
  /** Lease namespace (the install namespace) and name. */
  namespace: string;
  name: string;
  /** Unique per process; default `<hostname>_<uuid>`. */
  identity?: string;
  /** How long a Lease is valid without renewal. Default 15 s (whole seconds on the wire). */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down. Default 10 s. */
  renewDeadlineMs?: number;
  /** Time between attempts. Default 2 s. */
  retryPeriodMs?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
}

export interface LeaderElector {
  /** Whether this process holds the Lease now; replays the current value; completes on stop. */
  readonly isLeader$: Observable<boolean>;
  readonly isLeader: boolean;
  readonly identity: string;
  /**
   * Stops campaigning. By default a leader releases the Lease (clears the holder) so another
   * replica takes over at once; `release: false` walks away as a crash would.
   */
  stop(opts?: { release?: boolean }): Promise<void>;
}

function statusOf(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/**
 * Lease calls on a real API server, each bounded by `timeoutMs`, over the controller's lean
 * transport (kube-http): plain JSON, so the controller's bundle needs no generated API client and
 * none of the generated models' serializer (docs/adr/0024-lean-transport.md).
 */
function kubeLeaseClient(kc: KubeConfig, namespace: string, name: string, timeoutMs = 5_000): LeaseClient {
  const http = kubeHttp(kc);
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const where = `Lease ${namespace}/${name}`;
  const conflictOr = (e: unknown, op: string): never => {
    if (statusOf(e) === 409) throw new LeaseConflict(`${op} ${where}: conflict`);
    throw new Error(`${op} ${where}: ${statusOf(e) ? `HTTP ${statusOf(e)}` : e instanceof Error ? e.message : String(e)}`, { cause: e });
  };
  const call = async (op: string, method: string, path: string, body?: V1Lease) =>
    (await http.call(method, path, { timeoutMs, what: `${op} ${where}`, ...(body ? { body } : {}) })) as V1Lease;
  return {
    async get() {
      try {
        return await call('read', 'GET', `${leases}/${encodeURIComponent(name)}`);
      } catch (e) {
        if (statusOf(e) === 404) return undefined;
        return conflictOr(e, 'read');
      }
    },
    async create(lease) {
      try {
        return await call('create', 'POST', leases, lease);
      } catch (e) {
        return conflictOr(e, 'create');
      }
    },
    async replace(lease) {
      try {
        return await call('replace', 'PUT', `${leases}/${encodeURIComponent(name)}`, lease);
      } catch (e) {
        return conflictOr(e, 'replace');
      }
    },
  };
}

/** Read MicroTime fields are plain strings; writes need V1MicroTime (6 fractional digits, through its toISOString). */
function microTime(value: unknown, fallback: number): V1MicroTime {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return new V1MicroTime(Number.isNaN(ms) ? fallback : ms);
}

function timeKey(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value ?? '');
}

/** What identifies one version of the leader record, to notice when it last changed. */
function recordKey(lease: V1Lease): string {
  const s = lease.spec ?? {};
  return [s.holderIdentity ?? '', timeKey(s.renewTime), timeKey(s.acquireTime), s.leaseTransitions ?? 0, s.leaseDurationSeconds ?? 0].join('|');
}

/**
 * Lease-based leader election on `coordination.k8s.io/v1`, after client-go's `leaderelection`:
 * create the Lease if absent; take it over only once the locally observed time since its record
 * last changed exceeds its lease duration (never trusting the holder's clock); renew every retry
 * period; step down if renewing fails for the renew deadline or someone else holds it.
 */
export class LeaseElector implements LeaderElector {
  readonly identity: string;
  private readonly leader = new BehaviorSubject<boolean>(false);
  readonly isLeader$: Observable<boolean> = this.leader.pipe(distinctUntilChanged());
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observedKey = '';
  private observedAt = 0;
  private observedDurationMs = 0;
  private observedHolder = '';
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: LeaseClient,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.identity = opts.identity ?? `${hostname()}_${randomUUID()}`;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadline must be shorter than leaseDuration');
    if (this.retryPeriodMs >= this.renewDeadlineMs) throw new Error('retryPeriod must be shorter than renewDeadline');
  }

  get isLeader(): boolean {
    return this.leader.value;
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (this.stopped) return this.loop;
    this.stopped = true;
    this.wake?.();
    await this.loop;
    // Also when stopped between winning the Lease and announcing it.
    if (this.observedHolder === this.identity && (opts.release ?? true)) await this.release();
    this.setLeader(false);
    this.leader.complete();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.acquire();
      if (this.stopped) return;
      this.setLeader(true);
      await this.renewUntilLost();
      if (!this.stopped) this.setLeader(false);
    }
  }

  private async acquire(): Promise<void> {
    while (!this.stopped) {
      if (await this.attempt()) return;
      await this.sleep(this.nextAttemptInMs());
    }
  }

  /**
   * A retry period (with jitter), or less when the Lease someone else holds will have expired by
   * the locally observed clock before then: the next attempt comes right at that moment instead of
   * up to a retry period later. The expiry rule itself is unchanged.
   */
  private nextAttemptInMs(): number {
    const retry = this.retryPeriodMs * (1 + 0.2 * this.random());
    if (this.observedHolder === '' || this.observedHolder === this.identity) return retry;
    const untilExpiry = this.observedAt + this.observedDurationMs - this.clock.now();
    return untilExpiry >= 0 && untilExpiry < retry ? untilExpiry + 1 : retry;
  }

  private async renewUntilLost(): Promise<void> {
    let renewedAt = this.clock.now();
    while (!this.stopped) {
      await this.sleep(this.retryPeriodMs);
      if (this.stopped) return;
      const ok = await this.attempt();
      if (ok) {
        renewedAt = this.clock.now();
        continue;
      }
      const heldByOther = this.observedHolder !== this.identity && this.observedHolder !== '';
      if (heldByOther || this.clock.now() - renewedAt >= this.renewDeadlineMs) {
        this.opts.logger?.warn('lost the leader Lease', { lease: this.leaseRef(), identity: this.identity, holder: this.observedHolder });
        return;
      }
    }
  }

  /** One tryAcquireOrRenew; false on any failure (logged), never throws. */
  private async attempt(): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew();
    } catch (e) {
      if (!(e instanceof LeaseConflict)) {
        this.opts.logger?.warn('leader election request failed', { lease: this.leaseRef(), error: e instanceof Error ? e.message : String(e) });
      }
      return false;
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const current = await this.client.get();
    if (!current) {
      const created = await this.client.create(this.newLease(now));
      this.observe(created, now);
      return true;
    }
    this.observe(current, now);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== '' && holder !== this.identity && this.observedAt + this.observedDurationMs > now) return false;
    const renewed = await this.client.replace(this.renewedLease(current, now));
    this.observe(renewed, now);
    if (holder !== this.identity) this.opts.logger?.info('acquired the leader Lease', { lease: this.leaseRef(), identity: this.identity, previous: holder || undefined });
    return true;
  }

  private observe(lease: V1Lease, now: number): void {
    this.observedHolder = lease.spec?.holderIdentity ?? '';
    this.observedDurationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
    const key = recordKey(lease);
    if (key === this.observedKey) return;
    this.observedKey = key;
    this.observedAt = now;
  }

  private newLease(now: number): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.opts.name, namespace: this.opts.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: 0,
      },
    };
  }

  private renewedLease(current: V1Lease, now: number): V1Lease {
    const spec = current.spec ?? {};
    const same = spec.holderIdentity === this.identity;
    return {
      ...current,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: same ? microTime(spec.acquireTime, now) : new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: same ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
  }

  /** Clears the holder so a standby takes over without waiting for the lease to expire. */
  private async release(): Promise<void> {
    try {
      const current = await this.client.get();
      if (!current || current.spec?.holderIdentity !== this.identity) return;
      const now = this.clock.now();
      await this.client.replace({
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: microTime(current.spec.acquireTime, now),
          renewTime: new V1MicroTime(now),
        },
      });
      this.opts.logger?.info('released the leader Lease', { lease: this.leaseRef(), identity: this.identity });
    } catch (e) {
      this.opts.logger?.warn('could not release the leader Lease', { lease: this.leaseRef(), error: e instanceof Error ? e.message : String(e) });
    }
  }

  private setLeader(value: boolean): void {
    if (this.leader.value !== value && !this.leader.closed) this.leader.next(value);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.schedule(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        cancel();
        this.wake = undefined;
        resolve();
      };
    });
  }

  private leaseRef(): string {
    return `${this.opts.namespace}/${this.opts.name}`;
  }
}

/** Starts campaigning for the Lease `namespace/name` on the cluster of `kubeConfig`. */
export function startLeaderElection(opts: LeaderElectionOptions & { kubeConfig: KubeConfig }): LeaderElector {
  const timeoutMs = Math.max(1_000, Math.floor((opts.renewDeadlineMs ?? 10_000) / 2));
  return new LeaseElector(kubeLeaseClient(opts.kubeConfig, opts.namespace, opts.name, timeoutMs), opts).start();
}
