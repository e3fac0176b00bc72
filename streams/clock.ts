import type { SchedulerLike } from 'rxjs';

/** Cancels a scheduled callback; calling it twice is harmless. */
export type Cancel = () => void;

/**
 * Time as the stream primitives see it. Injected so that queues, backoffs and elections can run
 * in virtual time in tests (`ManualClock`, or an RxJS `TestScheduler` through `schedulerClock`).
 */
export interface Clock {
  now(): number;
  schedule(fn: () => void, delayMs: number): Cancel;
}

/** Wall-clock time with unref'd timers: a pending delay never keeps the process alive by itself. */
export const realClock: Clock = {
  now: () => Date.now(),
  schedule(fn, delayMs) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return () => clearTimeout(t);
  },
};

/** A clock driven by an RxJS scheduler (`asyncScheduler`, or a `TestScheduler` for marble tests). */
export function schedulerClock(scheduler: SchedulerLike): Clock {
  return {
    now: () => scheduler.now(),
    schedule(fn, delayMs) {
      const sub = scheduler.schedule(fn, Math.max(0, delayMs));
      return () => sub.unsubscribe();
    },
  };
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when told to (`advance`), firing due callbacks in time order. */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers = new Set<Timer>();

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  schedule(fn: () => void, delayMs: number): Cancel {
    const timer = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Number of callbacks still scheduled. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, running every callback that falls due, in order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.timers.delete(next);
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    // A callback may itself advance the clock; time never goes backwards.
    this.time = Math.max(this.time, target);
  }

  private nextDue(limit: number): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.timers) {
      if (t.at > limit) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
