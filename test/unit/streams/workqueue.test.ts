import { describe, expect, it } from '@jest/globals';
import { map, Subject, type ObservedValueOf } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { ManualClock, schedulerClock } from './manual-clock.js';
import { exponentialRateLimiter, maxOfRateLimiters, tokenBucketRateLimiter } from '../../../streams/ratelimit.js';
import { WorkQueue, type ReconcileResult } from '../../../streams/workqueue.js';

/** Lets every pending promise continuation run (no wall-clock time passes). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Call {
  key: string;
  at: number;
  signal: AbortSignal;
  /** Resolved or rejected by the test. */
  settled: boolean;
  resolve(r?: ReconcileResult): void;
  reject(e: unknown): void;
}

/** A reconcile whose calls the test finishes by hand, tracking how many run per key at once. */
function controlledReconcile(clock: ManualClock) {
  const calls: Call[] = [];
  const running = new Map<string, number>();
  let maxSameKey = 0;
  let maxTotal = 0;
  let total = 0;
  const reconcile = (key: string, signal: AbortSignal) =>
    new Promise<ReconcileResult>((resolve, reject) => {
      const n = (running.get(key) ?? 0) + 1;
      running.set(key, n);
      total++;
      maxSameKey = Math.max(maxSameKey, n);
      maxTotal = Math.max(maxTotal, total);
      const call: Call = {
        key,
        at: clock.now(),
        signal,
        settled: false,
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      };
      const done = () => {
        running.set(key, (running.get(key) ?? 1) - 1);
        total--;
        call.settled = true;
      };
      calls.push(call);
    });
  return {
    reconcile,
    calls,
    open: () => calls.filter((c) => !c.signal.aborted).slice(-total),
    maxSameKey: () => maxSameKey,
    maxTotal: () => maxTotal,
    runsOf: (key: string) => calls.filter((c) => c.key === key).length,
  };
}

function setup(opts: { concurrency?: number; baseMs?: number; maxMs?: number; groupConcurrency?: number; slowAfterMs?: number; grouped?: boolean; failing?: Set<string>; failingConcurrency?: number; failingPerSecond?: number } = {}) {
  const clock = new ManualClock(1_000);
  const r = controlledReconcile(clock);
  const queue = new WorkQueue({
    reconcile: r.reconcile,
    concurrency: opts.concurrency ?? 1,
    // Grouped tests name keys `<group>:<n>`.
    ...(opts.grouped ? { groupOf: (k: string) => k.split(':')[0]! } : {}),
    ...(opts.groupConcurrency !== undefined ? { groupConcurrency: opts.groupConcurrency } : {}),
    ...(opts.slowAfterMs !== undefined ? { slowAfterMs: opts.slowAfterMs } : {}),
    ...(opts.failing ? { groupFailing: (g: string) => opts.failing!.has(g) } : {}),
    ...(opts.failingConcurrency !== undefined ? { failingConcurrency: opts.failingConcurrency } : {}),
    ...(opts.failingPerSecond !== undefined ? { failingPerSecond: opts.failingPerSecond } : {}),
    clock,
    rateLimiter: exponentialRateLimiter({ baseMs: opts.baseMs ?? 5, maxMs: opts.maxMs ?? 1_000_000 }),
  });
  const outcomes: ObservedValueOf<WorkQueue['outcomes$']>[] = [];
  queue.outcomes$.subscribe((o) => outcomes.push(o));
  return { clock, r, queue, outcomes };
}

describe('WorkQueue', () => {
  it('deduplicates a key added several times before it runs', async () => {
    const { r, queue } = setup();
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    expect(queue.stats().depth).toBe(2);
    queue.start();
    await settle();
    r.calls[0]!.resolve();
    await settle();
    r.calls[1]!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).toEqual(['ns/a', 'ns/b']);
    expect(queue.stats()).toMatchObject({ depth: 0, active: 0 });
  });

  it('never runs one key twice at once, and reruns it exactly once after changes during a run', async () => {
    const { r, queue } = setup({ concurrency: 4 });
    queue.start();
    queue.add('k');
    await settle();
    expect(r.calls).toHaveLength(1);
    queue.add('k');
    queue.add('k');
    queue.add('k');
    await settle();
    expect(r.calls).toHaveLength(1);
    expect(queue.stats()).toMatchObject({ depth: 0, active: 1 });
    r.calls[0]!.resolve();
    await settle();
    expect(r.calls).toHaveLength(2);
    r.calls[1]!.resolve();
    await settle();
    expect(r.runsOf('k')).toBe(2);
    expect(r.maxSameKey()).toBe(1);
    await queue.whenIdle();
  });

  it('caps the number of concurrent reconciles over all keys', async () => {
    const { r, queue } = setup({ concurrency: 3 });
    queue.start();
    for (let i = 0; i < 10; i++) queue.add(`k${i}`);
    await settle();
    expect(r.calls).toHaveLength(3);
    expect(queue.stats()).toMatchObject({ depth: 7, active: 3 });
    while (r.calls.length < 10 || queue.stats().active > 0) {
      r.calls.filter((c) => !c.signal.aborted).forEach((c) => c.resolve());
      await settle();
    }
    expect(r.maxTotal()).toBe(3);
    expect(new Set(r.calls.map((c) => c.key)).size).toBe(10);
  });

  it('takes ready keys from the groups in turn, so a group with many keys never starves one with few', async () => {
    const { r, queue } = setup({ grouped: true });
    for (let i = 1; i <= 4; i++) queue.add(`big:${i}`);
    queue.add('small:1');
    queue.add('small:2');
    queue.start();
    while (r.calls.length < 6 || queue.stats().active > 0) {
      await settle();
      r.calls.filter((c) => !c.signal.aborted).forEach((c) => c.resolve());
      await settle();
    }
    expect(r.calls.map((c) => c.key)).toEqual(['big:1', 'small:1', 'big:2', 'small:2', 'big:3', 'big:4']);
  });

  it('caps the reconciles of one group running at once, leaving the other slots to other groups', async () => {
    const { r, queue } = setup({ grouped: true, concurrency: 10, groupConcurrency: 2 });
    for (let i = 1; i <= 5; i++) queue.add(`a:${i}`);
    for (let i = 1; i <= 5; i++) queue.add(`b:${i}`);
    queue.start();
    await settle();
    expect(r.calls.map((c) => c.key).sort()).toEqual(['a:1', 'a:2', 'b:1', 'b:2']);
    expect(queue.stats()).toMatchObject({ depth: 6, active: 4 });
    r.calls.find((c) => c.key === 'a:1')!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).toContain('a:3');
    expect(queue.stats().active).toBe(4);
  });

  it('lets a stuck group hold no slot the others need: a slow reconcile stops counting, and its group runs one at a time', async () => {
    const { clock, r, queue } = setup({ grouped: true, concurrency: 2, slowAfterMs: 1_000 });
    for (let i = 1; i <= 3; i++) queue.add(`sick:${i}`);
    for (let i = 1; i <= 4; i++) queue.add(`ok:${i}`);
    queue.start();
    await settle();
    expect(r.calls.map((c) => c.key)).toEqual(['sick:1', 'ok:1']);
    // sick:1 never answers; ok:1 does. Until sick:1 is known slow the global cap of 2 holds.
    r.calls[1]!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).toEqual(['sick:1', 'ok:1', 'sick:2']);
    clock.advance(1_000);
    await settle();
    // Both sick reconciles are slow now: they free the global slots, and the sick group gets no more.
    expect(r.calls.map((c) => c.key)).toEqual(['sick:1', 'ok:1', 'sick:2', 'ok:2', 'ok:3']);
    for (const key of ['ok:2', 'ok:3']) r.calls.find((c) => c.key === key)!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).toContain('ok:4');
    r.calls.find((c) => c.key === 'ok:4')!.resolve();
    await settle();
    expect(r.calls.filter((c) => c.key.startsWith('sick:'))).toHaveLength(2);
    // The sick group finishes its slow reconciles: it may run again, one at a time while any is slow.
    r.calls.find((c) => c.key === 'sick:1')!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).not.toContain('sick:3');
    r.calls.find((c) => c.key === 'sick:2')!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).toContain('sick:3');
    expect(queue.stats()).toMatchObject({ depth: 0, active: 1 });
    r.calls.find((c) => c.key === 'sick:3')!.resolve();
    await queue.whenIdle();
  });

  it('runs the keys of failing groups a few at a time between them, so their burst leaves the slots to healthy groups', async () => {
    const failing = new Set(['down1', 'down2']);
    const { clock, r, queue } = setup({ grouped: true, concurrency: 20, failing });
    for (let i = 1; i <= 10; i++) queue.add(`down1:${i}`);
    for (let i = 1; i <= 10; i++) queue.add(`down2:${i}`);
    for (let i = 1; i <= 3; i++) queue.add(`ok:${i}`);
    queue.start();
    await settle();
    // A tenth of 20 for both failing groups together; the healthy group runs at once.
    const running = () => r.calls.filter((c) => !c.settled).map((c) => c.key);
    expect(running().filter((k) => !k.startsWith('ok:'))).toHaveLength(2);
    expect(running().filter((k) => k.startsWith('ok:'))).toEqual(['ok:1', 'ok:2', 'ok:3']);
    // A healthy key added while the failing ones are queued does not wait behind them.
    queue.add('ok2:1');
    await settle();
    expect(running()).toContain('ok2:1');
    // Each failing reconcile that ends lets one more in, the groups in turn (once the failing
    // pace has a token again: 20 a second by default).
    r.calls.find((c) => c.key === 'down1:1')!.resolve();
    clock.advance(50);
    await settle();
    expect(running().filter((k) => !k.startsWith('ok'))).toEqual(['down2:1', 'down1:2']);
    // A group that recovers is no longer held to the failing lane.
    failing.delete('down1');
    for (const c of r.calls.filter((x) => !x.settled && x.key.startsWith('ok'))) c.resolve();
    r.calls.find((c) => c.key === 'down2:1')!.resolve();
    clock.advance(50);
    await settle();
    expect(running().filter((k) => k.startsWith('down1:')).length).toBeGreaterThanOrEqual(8);
    expect(running().filter((k) => k.startsWith('down2:'))).toHaveLength(1);
    // The rest of down2, one per token.
    while (r.calls.some((c) => !c.settled) || queue.stats().depth > 0) {
      for (const c of r.calls.filter((x) => !x.settled)) c.resolve();
      clock.advance(50);
      await settle();
    }
    await queue.whenIdle();
    expect(new Set(r.calls.map((c) => c.key)).size).toBe(24);
  });

  it('starts the failing groups\' reconciles evenly spaced, failingPerSecond a second, while healthy keys start at once', async () => {
    const { clock, r, queue } = setup({ grouped: true, concurrency: 10, failing: new Set(['down']), failingPerSecond: 5 });
    for (let i = 1; i <= 8; i++) queue.add(`down:${i}`);
    queue.start();
    const finishAll = async () => {
      for (let round = 0; round < 20 && r.calls.some((c) => !c.settled); round++) {
        for (const c of r.calls.filter((x) => !x.settled)) c.resolve();
        await settle();
      }
    };
    // The bucket holds the lane's one token: the first starts at once, then nothing more.
    await settle();
    await finishAll();
    expect(r.calls.map((c) => c.key)).toEqual(['down:1']);
    // A healthy key is not held by the failing groups' pace.
    queue.add('ok:1');
    await settle();
    expect(r.calls.at(-1)!.key).toBe('ok:1');
    await finishAll();
    // Then one every 200 ms (5 a second), woken by the queue itself.
    const startedAt: number[] = [];
    for (let step = 0; step < 1_400; step += 10) {
      clock.advance(10);
      await settle();
      for (const c of r.calls.filter((x) => !x.settled && x.key.startsWith('down:'))) {
        startedAt.push(c.at);
        c.resolve();
      }
      await settle();
    }
    expect(r.calls.filter((c) => c.key.startsWith('down:'))).toHaveLength(8);
    expect(startedAt.map((t, i) => (i === 0 ? t - 1_000 : t - startedAt[i - 1]!))).toEqual([200, 200, 200, 200, 200, 200, 200]);
    await queue.whenIdle();
    await queue.shutdown(0);
  });

  it('frees the failing lane of a failing reconcile that turns slow', async () => {
    const { clock, r, queue } = setup({ grouped: true, concurrency: 4, failing: new Set(['downA', 'downB']), failingConcurrency: 1, slowAfterMs: 1_000 });
    queue.add('downA:1');
    queue.add('downA:2');
    queue.add('downB:1');
    queue.start();
    await settle();
    expect(r.calls.map((c) => c.key)).toEqual(['downA:1']);
    clock.advance(1_000);
    await settle();
    // downA:1 is slow: it holds no place in the failing lane (downB:1 runs), and its own group
    // runs one at a time while it is (downA:2 waits).
    expect(r.calls.map((c) => c.key)).toEqual(['downA:1', 'downB:1']);
    r.calls[1]!.resolve();
    await settle();
    expect(r.calls.map((c) => c.key)).toEqual(['downA:1', 'downB:1']);
    r.calls[0]!.resolve();
    clock.advance(50);
    await settle();
    expect(r.calls.map((c) => c.key)).toEqual(['downA:1', 'downB:1', 'downA:2']);
    r.calls[2]!.resolve();
    await queue.whenIdle();
  });

  it('backs off a failing key exponentially from 5 ms, up to the cap', async () => {
    const { clock, r, queue } = setup({ maxMs: 40 });
    queue.start();
    queue.add('k');
    const failedAt: number[] = [];
    for (let i = 0; i < 7; i++) {
      await settle();
      failedAt.push(clock.now());
      r.calls[i]!.reject(new Error('remote down'));
      await settle();
      // Reconciles start once the adding code has returned (a microtask later): advance in
      // 1 ms steps so each one starts at the virtual time its delay fired.
      for (let t = 0; t < 1_000; t++) {
        clock.advance(1);
        await Promise.resolve();
      }
    }
    await settle();
    const gaps = r.calls.slice(1).map((c, i) => c.at - failedAt[i]!);
    expect(gaps).toEqual([5, 10, 20, 40, 40, 40, 40]);
    expect(queue.numRequeues('k')).toBe(7);
    expect(queue.stats().retries).toBe(7);
  });

  it('caps the default per-key backoff at 1000 s', () => {
    const limiter = exponentialRateLimiter();
    const delays = Array.from({ length: 5_001 }, () => limiter.when('k'));
    expect(delays.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(delays[17]).toBe(655_360);
    expect(delays[18]).toBe(1_000_000);
    expect(delays[5_000]).toBe(1_000_000); // no overflow however many failures
    expect(limiter.when('other')).toBe(5); // per key
  });

  it('forgets the failures of a key once it succeeds', async () => {
    const { clock, r, queue } = setup();
    queue.start();
    queue.add('k');
    for (let i = 0; i < 3; i++) {
      await settle();
      r.calls[i]!.reject(new Error('boom'));
      await settle();
      clock.advance(10_000);
    }
    await settle();
    expect(queue.numRequeues('k')).toBe(3);
    r.calls[3]!.resolve();
    await settle();
    expect(queue.numRequeues('k')).toBe(0);
    queue.add('k');
    await settle();
    r.calls[4]!.reject(new Error('boom again'));
    await settle();
    const before = r.calls.length;
    clock.advance(4);
    await settle();
    expect(r.calls.length).toBe(before);
    clock.advance(1);
    await settle();
    expect(r.calls.length).toBe(before + 1);
  });

  it('runs a key given to addAfter only once its delay passes, the earliest delay winning', async () => {
    const { clock, r, queue } = setup();
    queue.start();
    queue.addAfter('k', 500);
    queue.addAfter('k', 200);
    queue.addAfter('k', 900);
    expect(queue.stats().waiting).toBe(1);
    clock.advance(199);
    await settle();
    expect(r.calls).toHaveLength(0);
    clock.advance(1);
    await settle();
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.at).toBe(1_200);
    r.calls[0]!.resolve();
    clock.advance(10_000);
    await settle();
    expect(r.calls).toHaveLength(1);
  });

  it('schedules the key again when the reconcile asks for requeueAfterMs', async () => {
    const { clock, r, queue, outcomes } = setup();
    queue.start();
    queue.add('k');
    await settle();
    r.calls[0]!.resolve({ requeueAfterMs: 60_000 });
    await settle();
    expect(outcomes.map((o) => o.result)).toEqual(['requeue']);
    clock.advance(59_999);
    await settle();
    expect(r.calls).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(r.calls).toHaveLength(2);
  });

  it('starts a reconcile only after every consumer of the change that added its key has seen it', async () => {
    // The controller's case: one Secret change feeds the key pipeline (subscribed first) and the
    // cluster registry (subscribed second); the reconcile must read the registry's new state.
    const changes = new Subject<number>();
    let registry = 0;
    const seen: number[] = [];
    const queue = new WorkQueue({ reconcile: async () => void seen.push(registry), clock: new ManualClock(0) });
    queue.start();
    const fed = queue.feed(changes.pipe(map(() => 'k')));
    const folded = changes.subscribe((v) => (registry = v));
    changes.next(1);
    await queue.whenIdle();
    changes.next(2);
    await queue.whenIdle();
    expect(seen).toEqual([1, 2]);
    fed.unsubscribe();
    folded.unsubscribe();
    await queue.shutdown();
  });

  it('treats a reconcile that throws synchronously as a failure', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({
      clock,
      rateLimiter: exponentialRateLimiter(),
      reconcile: () => {
        throw new Error('sync');
      },
    });
    const outcomes: string[] = [];
    queue.outcomes$.subscribe((o) => outcomes.push(o.result));
    queue.start();
    queue.add('k');
    await settle();
    expect(outcomes).toEqual(['error']);
    expect(queue.stats().waiting).toBe(1);
    await queue.shutdown(0);
  });

  it('on shutdown drops queued and delayed keys and waits for in-flight reconciles', async () => {
    const { r, queue } = setup({ concurrency: 1 });
    queue.start();
    queue.add('a');
    queue.add('b');
    queue.addAfter('c', 1_000);
    await settle();
    const done = queue.shutdown(5_000);
    queue.add('d');
    await settle();
    expect(queue.stats()).toMatchObject({ depth: 0, waiting: 0, active: 1 });
    r.calls[0]!.resolve();
    await expect(done).resolves.toEqual({ drained: true, abandoned: [] });
    expect(r.calls.map((c) => c.key)).toEqual(['a']);
  });

  it('aborts in-flight reconciles when the shutdown deadline passes', async () => {
    const { clock, r, queue } = setup({ concurrency: 2 });
    queue.start();
    queue.add('a');
    queue.add('b');
    await settle();
    const done = queue.shutdown(2_000);
    r.calls[0]!.resolve();
    await settle();
    clock.advance(2_000);
    await expect(done).resolves.toEqual({ drained: false, abandoned: ['b'] });
    expect(r.calls[1]!.signal.aborted).toBe(true);
    expect(r.calls[0]!.signal.aborted).toBe(false);
  });

  it('takes keys from an observable and reports metrics', async () => {
    const clock = new ManualClock();
    const seen = { adds: 0, retries: 0, depth: [] as number[], latency: [] as number[], work: [] as number[], active: [] as number[] };
    let fail = true;
    const queue = new WorkQueue({
      clock,
      rateLimiter: exponentialRateLimiter(),
      reconcile: async () => {
        clock.advance(30);
        if (fail) {
          fail = false;
          throw new Error('once');
        }
      },
      metrics: {
        onAdd: () => seen.adds++,
        onRetry: () => seen.retries++,
        onDepth: (d) => seen.depth.push(d),
        onQueueLatency: (s) => seen.latency.push(s),
        onWorkDuration: (s) => seen.work.push(s),
        onActiveWorkers: (n) => seen.active.push(n),
      },
    });
    const keys = new Subject<string>();
    const sub = queue.feed(keys);
    keys.next('k');
    keys.next('k');
    clock.advance(100);
    queue.start();
    await settle();
    clock.advance(5);
    await settle();
    sub.unsubscribe();
    expect(seen.adds).toBe(2);
    expect(seen.retries).toBe(1);
    expect(seen.latency).toEqual([0.1, 0]);
    expect(seen.work).toEqual([0.03, 0.03]);
    expect(Math.max(...seen.depth)).toBe(1);
    expect(seen.active).toEqual([1, 0, 1, 0]);
  });
});

describe('rate limiters', () => {
  it('token bucket lets a burst through, then spaces attempts at the qps', () => {
    const clock = new ManualClock();
    const bucket = tokenBucketRateLimiter({ qps: 10, burst: 3, clock });
    expect([bucket.when('a'), bucket.when('b'), bucket.when('c')]).toEqual([0, 0, 0]);
    expect(bucket.when('d')).toBeCloseTo(100);
    expect(bucket.when('e')).toBeCloseTo(200);
    clock.advance(1_000);
    expect(bucket.when('f')).toBe(0);
  });

  it('max-of takes the longest delay and forgets in every limiter', () => {
    const clock = new ManualClock();
    const limiter = maxOfRateLimiters(exponentialRateLimiter({ baseMs: 5 }), tokenBucketRateLimiter({ qps: 1, burst: 1, clock }));
    expect(limiter.when('k')).toBe(5);
    expect(limiter.when('k')).toBeCloseTo(1_000);
    expect(limiter.retries('k')).toBe(2);
    limiter.forget('k');
    expect(limiter.retries('k')).toBe(0);
  });
});

describe('clocks', () => {
  it('schedulerClock follows an RxJS TestScheduler in virtual time', () => {
    const ts = new TestScheduler((a, b) => expect(a).toEqual(b));
    ts.run(({ flush }) => {
      const clock = schedulerClock(ts);
      const fired: number[] = [];
      clock.schedule(() => fired.push(clock.now()), 250);
      const cancel = clock.schedule(() => fired.push(-1), 100);
      cancel();
      flush();
      expect(fired).toEqual([250]);
    });
  });

  it('runs a WorkQueue delay on an RxJS scheduler', async () => {
    const ts = new TestScheduler((a, b) => expect(a).toEqual(b));
    const runs: number[] = [];
    const queue = new WorkQueue({ clock: schedulerClock(ts), reconcile: async () => void runs.push(ts.now()) });
    queue.start();
    ts.run(({ flush }) => {
      queue.addAfter('k', 1_000);
      flush();
    });
    await settle();
    expect(runs).toEqual([1_000]);
    await queue.shutdown(0);
  });

  it('ManualClock fires due callbacks in time order and never goes backwards', () => {
    const clock = new ManualClock(0);
    const order: string[] = [];
    clock.schedule(() => order.push('b'), 20);
    clock.schedule(() => order.push('a'), 10);
    clock.schedule(() => {
      order.push('c');
      clock.advance(100);
    }, 20);
    clock.advance(30);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(clock.now()).toBe(120);
  });
});
