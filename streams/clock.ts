/** Cancels a scheduled callback; calling it twice is harmless. */
export type Cancel = () => void;

/**
 * Time as the stream primitives see it. Injected so that queues, backoffs and elections can run
 * in virtual time in tests (test/unit/streams/manual-clock.ts: a manual clock, or one driven by an RxJS `TestScheduler`).
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

