import { realClock, type Clock } from './clock.js';

/** Decides how long a key waits before its next attempt (client-go `RateLimiter`). */
export interface RateLimiter {
  /** Delay before the next attempt of `key`; counts a failure for it. */
  when(key: string): number;
  /** The key succeeded: its failure count starts over. */
  forget(key: string): void;
  /** Failures counted for `key` since the last `forget`. */
  retries(key: string): number;
}

interface ExponentialOptions {
  baseMs?: number;
  maxMs?: number;
}

/** Per-key exponential backoff: base·2^failures, capped (client-go: 5 ms → 1000 s). */
export function exponentialRateLimiter(opts: ExponentialOptions = {}): RateLimiter {
  const baseMs = opts.baseMs ?? 5;
  const maxMs = opts.maxMs ?? 1_000_000;
  const failures = new Map<string, number>();
  return {
    when(key) {
      const n = failures.get(key) ?? 0;
      failures.set(key, n + 1);
      return exponentialDelay(n, baseMs, maxMs);
    },
    forget: (key) => void failures.delete(key),
    retries: (key) => failures.get(key) ?? 0,
  };
}

/** base·2^attempt capped at max, without overflowing for large attempts. */
function exponentialDelay(attempt: number, baseMs: number, maxMs: number): number {
  if (attempt >= 64) return maxMs;
  return Math.min(maxMs, baseMs * 2 ** attempt);
}

interface TokenBucketOptions {
  qps?: number;
  burst?: number;
  clock?: Clock;
}

/**
 * An overall token bucket shared by every key (client-go: 10 qps, burst 100), so that a burst of
 * failing keys cannot hammer an API server. Tokens are reserved: a deficit becomes a delay.
 */
export function tokenBucketRateLimiter(opts: TokenBucketOptions = {}): RateLimiter {
  const qps = opts.qps ?? 10;
  const burst = opts.burst ?? 100;
  const clock = opts.clock ?? realClock;
  let tokens = burst;
  let last = clock.now();
  return {
    when() {
      const now = clock.now();
      tokens = Math.min(burst, tokens + ((now - last) * qps) / 1000);
      last = now;
      tokens -= 1;
      return tokens >= 0 ? 0 : (-tokens / qps) * 1000;
    },
    forget: () => undefined,
    retries: () => 0,
  };
}

/** The longest delay of several limiters; failures are counted by the first (client-go `MaxOf`). */
export function maxOfRateLimiters(...limiters: RateLimiter[]): RateLimiter {
  return {
    when: (key) => Math.max(0, ...limiters.map((l) => l.when(key))),
    forget: (key) => limiters.forEach((l) => l.forget(key)),
    retries: (key) => Math.max(0, ...limiters.map((l) => l.retries(key))),
  };
}

/** controller-runtime's default: per-key 5 ms → 1000 s, at most 10 qps overall with a burst of 100. */
export function defaultControllerRateLimiter(clock: Clock = realClock): RateLimiter {
  return maxOfRateLimiters(exponentialRateLimiter(), tokenBucketRateLimiter({ clock }));
}
