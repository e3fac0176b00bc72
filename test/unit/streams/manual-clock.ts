// Clocks (streams/clock.ts) for virtual-time tests.
import type { SchedulerLike } from 'rxjs';
import type { Cancel, Clock } from '../../../streams/clock.js';

/** A clock driven by an RxJS scheduler (a `TestScheduler` for marble tests). */
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
