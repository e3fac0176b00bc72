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

/** A token bucket: `perSecond` tokens a second, holding at most `burst`, full to begin with. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes a token if there is one (0); else takes none and says in how many ms there will be one. */
  tryTake(): number {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) * 1000) / this.perSecond;
  }

  /** Takes a token, in advance if there is none (a deficit): in how many ms it is due. */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.perSecond) * 1000;
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
  }
}

/**
 * An overall token bucket shared by every key (client-go: 10 qps, burst 100), so that a burst of
 * failing keys cannot hammer an API server. Tokens are reserved: a deficit becomes a delay.
 */
export function tokenBucketRateLimiter(opts: TokenBucketOptions = {}): RateLimiter {
  const bucket = new TokenBucket(opts.qps ?? 10, opts.burst ?? 100, opts.clock ?? realClock);
  return {
    when: () => bucket.reserve(),
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
