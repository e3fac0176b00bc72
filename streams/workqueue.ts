import { Subject, type Observable, type Subscription } from 'rxjs';
import type { Logger } from '../src/logger.js';
import { realClock, type Cancel, type Clock } from './clock.js';
import { defaultControllerRateLimiter, TokenBucket, type RateLimiter } from './ratelimit.js';

/** What a reconcile may ask for: `requeueAfterMs` schedules the key again (controller-runtime `RequeueAfter`). */
export type ReconcileResult = { requeueAfterMs?: number } | void;

/** Converges one key. Must honour `signal` (aborted when a shutdown deadline passes). */
type Reconcile = (key: string, signal: AbortSignal) => Promise<ReconcileResult>;

type OutcomeKind = 'success' | 'requeue' | 'error' | 'aborted';

interface ReconcileOutcome {
  key: string;
  result: OutcomeKind;
  durationMs: number;
  error?: unknown;
}

/** Hooks for Prometheus (controller-runtime workqueue and reconcile metric names map onto these). */
export interface WorkQueueMetrics {
  /** `workqueue_adds_total` */
  onAdd?(): void;
  /** `workqueue_depth` */
  onDepth?(depth: number): void;
  /** `workqueue_retries_total` */
  onRetry?(): void;
  /** `workqueue_queue_duration_seconds` */
  onQueueLatency?(seconds: number): void;
  /** `workqueue_work_duration_seconds` and `controller_runtime_reconcile_time_seconds` */
  onWorkDuration?(seconds: number): void;
  /** `controller_runtime_active_workers` */
  onActiveWorkers?(active: number): void;
  /** `controller_runtime_reconcile_total{result}` and `…_reconcile_errors_total` */
  onOutcome?(outcome: ReconcileOutcome): void;
}

interface WorkQueueOptions {
  reconcile: Reconcile;
  /** Maximum reconciles running at once, over all keys (`MaxConcurrentReconciles`). Default 1. */
  concurrency?: number;
  /**
   * The group a key belongs to (the controller: the import's source cluster). Ready keys are taken
   * from the groups in turn, so a group with many keys never starves one with few. Default: one group.
   */
  groupOf?: (key: string) => string;
  /** Maximum reconciles of one group running at once. Default: `concurrency`. */
  groupConcurrency?: number;
  /**
   * A reconcile running longer than this is slow (a source that does not answer): it stops counting
   * against `concurrency` but keeps its group's slot, and while a group has a slow reconcile it runs
   * one reconcile at a time. So a stuck group holds no slot the other groups need. Default: never.
   */
  slowAfterMs?: number;
  /**
   * Whether a group is failing as a whole (the controller: a source cluster that is unreachable or
   * refuses its credentials, whose imports only write that down). Keys of failing groups run at
   * most `failingConcurrency` reconciles at once between them, so the burst when a group fails
   * (every one of its keys at once) cannot take the slots, nor the capacity of what the
   * reconciles write to, that healthy groups need. Asked when a key is taken. Default: none is.
   */
  groupFailing?: (group: string) => boolean;
  /** See `groupFailing`. Default: a tenth of `concurrency`, at least 1. */
  failingConcurrency?: number;
  /**
   * Keys of failing groups start at most this many reconciles a second between them (a token
   * bucket holding `failingConcurrency` tokens: the lane may fill at once, then its starts are
   * evenly spaced, so that when a cluster fails its keys do not start back to back). One at a
   * time is not enough on its own: each of those reconciles is a quick write, so back to back
   * they still reach hundreds of writes a second to the local API server, which the healthy
   * groups' reconciles write to as well. Default: 20.
   */
  failingPerSecond?: number;
  clock?: Clock;
  rateLimiter?: RateLimiter;
  metrics?: WorkQueueMetrics;
  logger?: Logger;
}

interface QueueStats {
  /** Keys ready to run, not yet started. */
  depth: number;
  /** Keys running now. */
  active: number;
  /** Keys waiting for a delay (`addAfter`, `addRateLimited`). */
  waiting: number;
  adds: number;
  retries: number;
}

interface ShutdownResult {
  /** Every in-flight reconcile finished before the deadline. */
  drained: boolean;
  /** Keys whose reconcile was still running at the deadline (their signal was aborted). */
  abandoned: string[];
}

/**
 * A keyed work queue with client-go semantics: a key is queued at most once (dirty set), never
 * runs twice at once (processing set), and a key added while it runs runs once more afterwards.
 * Failures back off per key; `addAfter` delays; a global cap bounds concurrent reconciles.
 */
export class WorkQueue {
  /** Ready keys by group, groups in turn order (a group moves to the back when a key is taken from it). */
  private readonly ready = new Map<string, string[]>();
  private readyCount = 0;
  /** Running reconciles by group, and how many of those are slow. */
  private readonly groupActive = new Map<string, { running: number; slow: number }>();
  /** Running reconciles that count against `concurrency` (not slow). */
  private counted = 0;
  /** Running reconciles of failing groups that count against `failingConcurrency` (not slow). */
  private failingCounted = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, AbortController>();
  private readonly delayed = new Map<string, { at: number; cancel: Cancel }>();
  private readonly queuedAt = new Map<string, number>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly outcomeSubject = new Subject<ReconcileOutcome>();
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter;
  private readonly concurrency: number;
  private readonly groupConcurrency: number;
  private readonly failingConcurrency: number;
  /** Starts of failing groups' reconciles (see `failingPerSecond`). */
  private readonly failingStarts: TokenBucket;
  /** A pump scheduled for when the bucket holds a token again. */
  private failingWake?: Cancel;
  private readonly metrics: WorkQueueMetrics;
  private running = false;
  private pumpScheduled = false;
  private shuttingDown = false;
  private onAllDone?: () => void;
  private adds = 0;
  private retries = 0;

  /** Every finished reconcile, for metrics, logs and tests. Completes on shutdown. */
  readonly outcomes$: Observable<ReconcileOutcome> = this.outcomeSubject.asObservable();

  constructor(private readonly opts: WorkQueueOptions) {
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter(this.clock);
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.groupConcurrency = Math.max(1, opts.groupConcurrency ?? this.concurrency);
    this.failingConcurrency = Math.max(1, opts.failingConcurrency ?? Math.floor(this.concurrency / 10));
    const failingPerSecond = Math.max(1, opts.failingPerSecond ?? 20);
    this.failingStarts = new TokenBucket(failingPerSecond, this.failingConcurrency, this.clock);
    this.metrics = opts.metrics ?? {};
  }

  /** Starts running reconciles (keys added before are kept and run now). */
  start(): void {
    if (this.shuttingDown) throw new Error('work queue is shut down');
    this.running = true;
    this.pump();
  }

  /** Feeds every key of `keys$` into the queue until the subscription ends. */
  feed(keys$: Observable<string>): Subscription {
    return keys$.subscribe({
      next: (key) => this.add(key),
      error: (e: unknown) => this.opts.logger?.error('work queue key source failed', { error: e }),
    });
  }

  /** Queues `key` unless it is already queued; a running key is marked to run once more. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.adds++;
    this.metrics.onAdd?.();
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds `key` after `delayMs`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.cancel();
    const cancel = this.clock.schedule(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, cancel });
  }

  /** Adds `key` after its backoff delay (a failure is counted). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.retries++;
    this.metrics.onRetry?.();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Clears the failure count of `key` (it succeeded). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** Failures counted for `key` since it last succeeded. */
  numRequeues(key: string): number {
    return this.rateLimiter.retries(key);
  }

  stats(): QueueStats {
    return {
      depth: this.readyCount,
      active: this.processing.size,
      waiting: this.delayed.size,
      adds: this.adds,
      retries: this.retries,
    };
  }

  /** Resolves when nothing is queued or running (delayed keys may still be waiting). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking keys, drops queued and delayed ones (reconciles are level-triggered: whoever
   * runs next lists everything again) and waits for in-flight reconciles up to `deadlineMs`,
   * after which their signals are aborted.
   */
  async shutdown(deadlineMs = 30_000): Promise<ShutdownResult> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      this.running = false;
      for (const { cancel } of this.delayed.values()) cancel();
      this.delayed.clear();
      this.failingWake?.();
      this.failingWake = undefined;
      this.ready.clear();
      this.readyCount = 0;
      this.dirty.clear();
      this.reportDepth();
    }
    const drained = await this.waitForInFlight(deadlineMs);
    const abandoned = [...this.processing.keys()];
    if (!drained) for (const ac of this.processing.values()) ac.abort(new Error('work queue shutdown deadline passed'));
    this.outcomeSubject.complete();
    this.notifyIdle();
    return { drained, abandoned };
  }

  private waitForInFlight(deadlineMs: number): Promise<boolean> {
    if (this.processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const cancel = this.clock.schedule(() => {
        this.onAllDone = undefined;
        resolve(false);
      }, deadlineMs);
      this.onAllDone = () => {
        cancel();
        this.onAllDone = undefined;
        resolve(true);
      };
    });
  }

  private enqueue(key: string): void {
    const group = this.opts.groupOf?.(key) ?? '';
    const keys = this.ready.get(group);
    if (keys) keys.push(key);
    else this.ready.set(group, [key]);
    this.readyCount++;
    if (!this.queuedAt.has(key)) this.queuedAt.set(key, this.clock.now());
    this.reportDepth();
    this.schedulePump();
  }

  /**
   * Starts queued reconciles once the current synchronous work is done, never inside it: a key is
   * usually added from inside a change notification, and every other consumer of that change
   * (the cluster registry, the indexes) must have seen it before a reconcile reads their state.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running && this.counted < this.concurrency && this.readyCount > 0) {
      const next = this.takeNext();
      if (!next) return;
      this.dirty.delete(next.key);
      this.reportDepth();
      void this.run(next.key, next.group, next.failing);
    }
  }

  /** The first key of the first group (in turn order) that may start one more reconcile. */
  private takeNext(): { key: string; group: string; failing: boolean } | undefined {
    for (const [group, keys] of this.ready) {
      const active = this.groupActive.get(group);
      const cap = active && active.slow > 0 ? 1 : this.groupConcurrency;
      if ((active?.running ?? 0) >= cap) continue;
      const failing = this.opts.groupFailing?.(group) ?? false;
      if (failing && (this.failingCounted >= this.failingConcurrency || !this.takeFailingStart())) continue;
      const key = keys.shift()!;
      this.readyCount--;
      // Taken from: to the back of the turn order (or gone when empty).
      this.ready.delete(group);
      if (keys.length > 0) this.ready.set(group, keys);
      return { key, group, failing };
    }
    return undefined;
  }

  /** A failing group's reconcile may start now (a token taken); else the pump wakes when one may. */
  private takeFailingStart(): boolean {
    const waitMs = this.failingStarts.tryTake();
    if (waitMs === 0) return true;
    this.failingWake ??= this.clock.schedule(() => {
      this.failingWake = undefined;
      this.schedulePump();
    }, Math.ceil(waitMs));
    return false;
  }

  private async run(key: string, group: string, failing: boolean): Promise<void> {
    const ac = new AbortController();
    this.processing.set(key, ac);
    const active = this.groupActive.get(group) ?? { running: 0, slow: 0 };
    active.running++;
    this.groupActive.set(group, active);
    this.counted++;
    if (failing) this.failingCounted++;
    let slow = false;
    const cancelSlow =
      this.opts.slowAfterMs === undefined
        ? undefined
        : this.clock.schedule(() => {
            slow = true;
            active.slow++;
            this.counted--;
            if (failing) this.failingCounted--;
            this.pump();
          }, this.opts.slowAfterMs);
    this.metrics.onActiveWorkers?.(this.processing.size);
    const started = this.clock.now();
    const queuedAt = this.queuedAt.get(key) ?? started;
    this.queuedAt.delete(key);
    this.metrics.onQueueLatency?.((started - queuedAt) / 1000);
    let outcome: ReconcileOutcome;
    try {
      const result = await this.opts.reconcile(key, ac.signal);
      outcome = this.afterSuccess(key, result, started);
    } catch (error) {
      outcome = this.afterFailure(key, error, started, ac.signal.aborted);
    }
    cancelSlow?.();
    if (slow) active.slow--;
    else {
      this.counted--;
      if (failing) this.failingCounted--;
    }
    if (--active.running === 0) this.groupActive.delete(group);
    this.finish(key, outcome);
  }

  private afterSuccess(key: string, result: ReconcileResult, started: number): ReconcileOutcome {
    this.forget(key);
    const requeueAfterMs = result?.requeueAfterMs;
    if (requeueAfterMs !== undefined) this.addAfter(key, requeueAfterMs);
    const kind: OutcomeKind = requeueAfterMs === undefined ? 'success' : 'requeue';
    return { key, result: kind, durationMs: this.clock.now() - started };
  }

  private afterFailure(key: string, error: unknown, started: number, aborted: boolean): ReconcileOutcome {
    const durationMs = this.clock.now() - started;
    if (aborted) return { key, result: 'aborted', durationMs, error };
    this.opts.logger?.warn('reconcile failed; requeued with backoff', {
      key,
      error: error instanceof Error ? error.message : String(error),
      retries: this.rateLimiter.retries(key),
    });
    this.addRateLimited(key);
    return { key, result: 'error', durationMs, error };
  }

  private finish(key: string, outcome: ReconcileOutcome): void {
    this.processing.delete(key);
    this.metrics.onActiveWorkers?.(this.processing.size);
    this.metrics.onWorkDuration?.(outcome.durationMs / 1000);
    this.metrics.onOutcome?.(outcome);
    this.outcomeSubject.next(outcome);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    this.pump();
    if (this.processing.size === 0) this.onAllDone?.();
    this.notifyIdle();
  }

  private isIdle(): boolean {
    return this.processing.size === 0 && (this.readyCount === 0 || !this.running);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private reportDepth(): void {
    this.metrics.onDepth?.(this.readyCount);
  }
}
