import { Subject, type Observable, type Subscription } from 'rxjs';
import type { Logger } from '../src/logger.js';
import { realClock, type Cancel, type Clock } from './clock.js';
import { defaultControllerRateLimiter, type RateLimiter } from './ratelimit.js';

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
  private readonly ready: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, AbortController>();
  private readonly delayed = new Map<string, { at: number; cancel: Cancel }>();
  private readonly queuedAt = new Map<string, number>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly outcomeSubject = new Subject<ReconcileOutcome>();
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter;
  private readonly concurrency: number;
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
      depth: this.ready.length,
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
      this.ready.length = 0;
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
    this.ready.push(key);
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
    while (this.running && this.processing.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.dirty.delete(key);
      this.reportDepth();
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    const ac = new AbortController();
    this.processing.set(key, ac);
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
    return this.processing.size === 0 && (this.ready.length === 0 || !this.running);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private reportDepth(): void {
    this.metrics.onDepth?.(this.ready.length);
  }
}
