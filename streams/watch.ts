import type { KubeConfig } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { Observable } from 'rxjs';
import { decode } from '../src/api/decode.js';
import type { Logger } from '../src/logger.js';
import { describeError } from '../src/describe-error.js';
import { realClock, type Clock } from './clock.js';
import { linkedSignal } from './linked-signal.js';
import { ApiError, kubeTransport, type ListPage, type ListWatchTransport } from './kube-transport.js';
import {
  backoffDelay,
  decideAfterWatch,
  selectorQuery,
  watchQuery,
  type BackoffOptions,
  type WatchAttempt,
  type WatchEnd,
} from './watch-policy.js';

type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** What a list+watch source emits: the full current set after every (re)list, then changes. */
export type WatchEvent<T> =
  | { type: 'RESET'; items: T[]; resourceVersion: string }
  | { type: WatchEventType; object: T };

/** Whether the source can currently talk to its API server. */
export interface WatchHealth {
  connected: boolean;
  /** The last failure, while disconnected (includes `HTTP <code>` when the server answered). */
  lastError?: string;
  /** The HTTP status of the last failure when the server answered (401, 403, 5xx…). */
  statusCode?: number;
  /** When `connected` last changed. */
  since: Date;
}

interface ListWatchOptions<T> {
  kubeConfig: KubeConfig;
  /** Collection path, e.g. `/api/v1/namespaces/x/serviceaccounts`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Decodes and trims one raw object (drop `managedFields`, keep what the cache needs). Returning
   * undefined or throwing skips the object; the reason is logged with the object's name.
   */
  project: (raw: unknown) => T | undefined;
  /** Names the source in logs and errors, e.g. `"cluster2 serviceaccounts"`. */
  describe: string;
  logger?: Logger;
  /**
   * Re-watch (from the last resourceVersion) when no event arrived for this long. client-node
   * already ends a watch after 30 s without a byte (handled the same way); this watchdog is for
   * a shorter bound, counted in events rather than bytes.
   */
  idleTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Relist after this many failures in a row instead of resuming. Default 3. */
  relistAfterFailures?: number;
  /** Safety relist period (the cache diff hides unchanged objects). Default 10 min; 0 disables. */
  resyncIntervalMs?: number;
  /**
   * LIST page size. Default 100: a page's body and its parsed objects are what a LIST holds at
   * once, and native memory that grows for a big page stays grown (3,300 Secrets of generated
   * credentials, about 5 KB each: the first full LIST grew native memory by 13.5 MiB with pages
   * of 500, by 2.2 MiB with pages of 100, medians of four; ADR 0026).
   */
  pageSize?: number;
  /**
   * At most this many objects in one full LIST, pages together (a source that hands out
   * `continue` tokens forever cannot grow the cache without bound). Default 200,000.
   */
  maxListItems?: number;
  /** Told of every health change (connected, or a new error while disconnected). */
  onHealth?: (health: WatchHealth) => void;
  /** Test seam; defaults to the client-node transport for `kubeConfig`. */
  transport?: ListWatchTransport;
  clock?: Clock;
  random?: () => number;
}

const ObjectMeta = t.type({
  metadata: t.intersection([
    t.type({ name: t.string }),
    t.partial({ namespace: t.string, resourceVersion: t.string }),
  ]),
});

/** Bookmarks carry only `metadata.resourceVersion` (no name). */
const VersionedObject = t.type({ metadata: t.partial({ resourceVersion: t.string }) });

const StatusObject = t.partial({ code: t.number, message: t.string, reason: t.string });

/** `ns/name` (or `name`) of a raw object, for log lines. */
function objectRef(raw: unknown): string {
  const m = decode(ObjectMeta, raw);
  if (!m.ok) return '(unnamed object)';
  const { namespace, name } = m.value.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

function resourceVersionOf(raw: unknown): string | undefined {
  const m = decode(VersionedObject, raw);
  return m.ok ? m.value.metadata.resourceVersion : undefined;
}

/**
 * A cold Observable of watch events for one collection on one cluster. Each subscription lists,
 * emits RESET, then watches from the list's resourceVersion, resuming after normal ends and
 * relisting after 410 or repeated failures, with backoff. It never errors for API failures (they
 * are retried and reported through `onHealth`); unsubscribing aborts every request.
 */
export function listWatch<T>(opts: ListWatchOptions<T>): Observable<WatchEvent<T>> {
  return new Observable<WatchEvent<T>>((subscriber) => {
    const stop = new AbortController();
    const loop = new ListWatchLoop(opts, (e) => subscriber.next(e), stop.signal);
    loop.run().catch((e: unknown) => subscriber.error(e));
    return () => stop.abort();
  });
}

class ListWatchLoop<T> {
  private readonly transport: ListWatchTransport;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly relistAfterFailures: number;
  private resourceVersion: string | undefined;
  private failures = 0;
  private quickCloses = 0;
  private resyncDue = false;
  private health: WatchHealth | undefined;
  private currentWatch: AbortController | undefined;

  constructor(
    private readonly opts: ListWatchOptions<T>,
    private readonly emit: (e: WatchEvent<T>) => void,
    private readonly stop: AbortSignal,
  ) {
    this.transport = opts.transport ?? kubeTransport(opts.kubeConfig);
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.relistAfterFailures = Math.max(1, opts.relistAfterFailures ?? 3);
  }

  async run(): Promise<void> {
    const cancelResync = this.scheduleResync();
    try {
      while (!this.stop.aborted) {
        if (this.resourceVersion === undefined || this.resyncDue) {
          if (!(await this.relist())) await this.sleep(backoffDelay(this.failures, this.opts.backoff, this.random));
          continue;
        }
        await this.watchOnce(this.resourceVersion);
      }
    } finally {
      cancelResync();
    }
  }

  /** LISTs every page and emits RESET; false (after counting the failure) when it failed. */
  private async relist(): Promise<boolean> {
    const wasResync = this.resyncDue;
    this.resyncDue = false;
    try {
      const { items, resourceVersion } = await this.listAll();
      if (this.stop.aborted) return true;
      this.resourceVersion = resourceVersion;
      this.failures = 0;
      this.reportConnected();
      this.emit({ type: 'RESET', items, resourceVersion });
      this.opts.logger?.debug('listed', { source: this.opts.describe, items: items.length, resourceVersion });
      return true;
    } catch (e) {
      if (this.stop.aborted) return true;
      this.resyncDue = wasResync;
      this.failures++;
      this.reportFailure(describeError(e), e instanceof ApiError ? e.statusCode : undefined);
      return false;
    }
  }

  private async listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    const max = this.opts.maxListItems ?? 200_000;
    let fetched = 0;
    let page: ListPage | undefined;
    do {
      const query: Record<string, string> = { ...selectorQuery(this.opts), limit: String(this.opts.pageSize ?? 100) };
      if (page?.continueToken) query.continue = page.continueToken;
      page = await this.transport.list(this.opts.path, query, this.stop);
      fetched += page.items.length;
      if (fetched > max) throw new Error(`list ${this.opts.path}: more than ${max} objects across pages; aborted`);
      for (const raw of page.items) {
        const item = this.project(withTypeMeta(raw, page));
        if (item !== undefined) items.push(item);
      }
    } while (page.continueToken);
    return { items, resourceVersion: page.resourceVersion };
  }

  private async watchOnce(fromVersion: string): Promise<void> {
    const watch = new AbortController();
    this.currentWatch = watch;
    const linked = linkedSignal([this.stop, watch.signal]);
    const { signal } = linked;
    const started = this.clock.now();
    const attempt: Omit<WatchAttempt, 'end' | 'durationMs'> = { connected: false, events: 0 };
    let idle = false;
    const watchdog = this.idleWatchdog(() => {
      idle = true;
      watch.abort();
    });
    let expired: WatchEnd | undefined;
    const end = await this.transport.watch(
      this.opts.path,
      watchQuery(fromVersion, this.opts, this.random),
      (type, object) => {
        attempt.events++;
        watchdog.reset();
        expired ??= this.handleEvent(type, object, watch);
      },
      () => {
        attempt.connected = true;
        this.failures = 0;
        this.reportConnected();
      },
      signal,
    );
    watchdog.cancel();
    linked.release();
    this.currentWatch = undefined;
    if (this.stop.aborted) return;
    const outcome = expired ?? (idle ? { kind: 'idle' as const } : end);
    await this.afterWatch({ ...attempt, end: outcome, durationMs: this.clock.now() - started });
  }

  private async afterWatch(attempt: WatchAttempt): Promise<void> {
    const step = decideAfterWatch(attempt, this.failures, this.relistAfterFailures);
    if (attempt.end.kind === 'expired' || (attempt.end.kind === 'failed' && attempt.end.statusCode === 410)) {
      this.opts.logger?.info('resourceVersion expired; relisting', { source: this.opts.describe });
    }
    if (step.failure !== undefined) {
      this.failures++;
      this.reportFailure(step.failure, attempt.end.kind === 'failed' ? attempt.end.statusCode : undefined);
    }
    if (step.relist) this.resourceVersion = undefined;
    if (!step.backoff) {
      this.quickCloses = 0;
      return;
    }
    const attemptNo = step.failure !== undefined ? this.failures : ++this.quickCloses;
    await this.sleep(backoffDelay(attemptNo, this.opts.backoff, this.random));
  }

  /** Applies one watch event; returns an end when the event ends the watch (ERROR). */
  private handleEvent(type: string, object: unknown, watch: AbortController): WatchEnd | undefined {
    if (type === 'ERROR') {
      watch.abort();
      return errorEventEnd(object);
    }
    const rv = resourceVersionOf(object);
    if (rv !== undefined) this.resourceVersion = rv;
    if (type === 'BOOKMARK') return undefined;
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') {
      this.opts.logger?.warn('ignoring unknown watch event type', { source: this.opts.describe, type });
      return undefined;
    }
    const item = this.project(object);
    if (item !== undefined) this.emit({ type, object: item });
    return undefined;
  }

  private project(raw: unknown): T | undefined {
    try {
      const item = this.opts.project(raw);
      if (item === undefined) this.logSkipped(raw, 'the projection rejected it');
      return item;
    } catch (e) {
      this.logSkipped(raw, describeError(e));
      return undefined;
    }
  }

  private logSkipped(raw: unknown, why: string): void {
    this.opts.logger?.warn('skipping an object that does not decode', { source: this.opts.describe, object: objectRef(raw), error: why });
  }

  private idleWatchdog(onIdle: () => void): { reset(): void; cancel(): void } {
    const ms = this.opts.idleTimeoutMs;
    if (!ms || ms <= 0) return { reset: () => undefined, cancel: () => undefined };
    let cancel = this.clock.schedule(onIdle, ms);
    return {
      reset: () => {
        cancel();
        cancel = this.clock.schedule(onIdle, ms);
      },
      cancel: () => cancel(),
    };
  }

  private scheduleResync(): () => void {
    const period = this.opts.resyncIntervalMs ?? 600_000;
    if (period <= 0) return () => undefined;
    let cancel: () => void = () => undefined;
    const arm = () => {
      cancel = this.clock.schedule(() => {
        this.resyncDue = true;
        this.currentWatch?.abort();
        arm();
      }, period * (0.9 + 0.2 * this.random()));
    };
    arm();
    return () => cancel();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stop.aborted) return resolve();
      const done = () => {
        cancel();
        this.stop.removeEventListener('abort', done);
        resolve();
      };
      const cancel = this.clock.schedule(done, ms);
      this.stop.addEventListener('abort', done, { once: true });
    });
  }

  private reportConnected(): void {
    if (this.health?.connected) return;
    if (this.health) this.opts.logger?.info('connected again', { source: this.opts.describe });
    this.setHealth({ connected: true, since: new Date(this.clock.now()) });
  }

  private reportFailure(message: string, statusCode: number | undefined): void {
    const was = this.health;
    const lastError = `${this.opts.describe}: ${message}`;
    this.opts.logger?.warn('list/watch failed; retrying', { source: this.opts.describe, error: message, failures: this.failures });
    if (was && !was.connected && was.lastError === lastError) return;
    const since = was && !was.connected ? was.since : new Date(this.clock.now());
    this.setHealth({ connected: false, lastError, ...(statusCode === undefined ? {} : { statusCode }), since });
  }

  private setHealth(h: WatchHealth): void {
    this.health = h;
    this.opts.onHealth?.(h);
  }
}

/** List items carry no apiVersion/kind; give them the list's so list and watch objects match. */
function withTypeMeta(raw: unknown, page: ListPage): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const obj = raw as Record<string, unknown>;
  if (obj.apiVersion !== undefined && obj.kind !== undefined) return raw;
  return { apiVersion: page.apiVersion, kind: page.kind, ...obj };
}

function errorEventEnd(object: unknown): WatchEnd {
  const s = decode(StatusObject, object);
  const code = s.ok ? s.value.code : undefined;
  const message = (s.ok ? s.value.message : undefined) ?? 'watch ERROR event';
  if (code === 410) return { kind: 'expired', message };
  return code === undefined ? { kind: 'failed', message } : { kind: 'failed', message: `HTTP ${code}: ${message}`, statusCode: code };
}
