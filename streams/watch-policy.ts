// Pure decisions of the list+watch loop, kept apart from I/O so they can be pinned by unit tests.

/** How a single watch request ended. */
export type WatchEnd =
  /** The server closed the stream (its `timeoutSeconds` passed, or it restarted cleanly). */
  | { kind: 'closed' }
  /** No bytes for a while: client-node's inactivity timeout or our own idle watchdog. */
  | { kind: 'idle' }
  /** The resourceVersion is too old (410 Gone, as a status or as an ERROR event). */
  | { kind: 'expired'; message: string }
  /** Anything else: connection refused, reset, 5xx, 401/403, an ERROR event. */
  | { kind: 'failed'; message: string; statusCode?: number }
  /** We aborted it (unsubscribe, or a periodic resync is due). */
  | { kind: 'stopped' };

export interface WatchAttempt {
  end: WatchEnd;
  /** The server answered 200 and the stream was open. */
  connected: boolean;
  /** Watch events (bookmarks included) received. */
  events: number;
  durationMs: number;
}

interface NextStep {
  /** Drop the resourceVersion and LIST again. */
  relist: boolean;
  /** Wait (backoff) before the next request. */
  backoff: boolean;
  /** A failure to count and to report in health; undefined for normal ends. */
  failure?: string;
}

/**
 * How long a watch may stay silent before it is restarted: `idleMs` less up to 30 % at random,
 * drawn for each watch request. The watches of a controller start together (hundreds of source
 * clusters at start-up) and silent ones restart at once from where they were: with a fixed timeout
 * they would all restart together again and again, a burst of requests every `idleMs`.
 */
export function watchIdleDeadlineMs(idleMs: number, random: () => number = Math.random): number {
  return Math.round(idleMs * (1 - 0.3 * Math.min(1, Math.max(0, random()))));
}

/** A watch that closes this fast with nothing in it is treated as suspicious (no hot loop). */
const MIN_HEALTHY_WATCH_MS = 1_000;

/**
 * What to do after a watch ends. Normal ends re-watch at once from the last resourceVersion;
 * 410 relists at once; failures back off and, once `relistAfterFailures` failures in a row have
 * been seen, relist rather than trusting the resourceVersion.
 */
export function decideAfterWatch(attempt: WatchAttempt, failuresSoFar: number, relistAfterFailures: number): NextStep {
  const { end } = attempt;
  switch (end.kind) {
    case 'stopped':
    case 'idle':
      return { relist: false, backoff: false };
    case 'closed': {
      const suspicious = attempt.events === 0 && attempt.durationMs < MIN_HEALTHY_WATCH_MS;
      return { relist: false, backoff: suspicious };
    }
    case 'expired':
      return { relist: true, backoff: false };
    case 'failed':
      if (end.statusCode === 410) return { relist: true, backoff: false };
      return { relist: failuresSoFar + 1 >= relistAfterFailures, backoff: true, failure: end.message };
  }
}

export interface BackoffOptions {
  /** First delay. Default 500 ms. */
  initialMs?: number;
  /** Longest delay. Default 5 s: a returning API server is seen within seconds. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay taken off at random, so many watchers do not retry in step. Default 0.3. */
  jitter?: number;
}

/** Delay before retry number `attempt` (1-based): initial·factor^(attempt-1), capped, minus jitter. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialMs ?? 500;
  const max = opts.maxMs ?? 5_000;
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.3));
  const exponent = Math.min(Math.max(0, attempt - 1), 64);
  const base = Math.min(max, initial * factor ** exponent);
  return Math.round(base * (1 - jitter * random()));
}

/** A server-side watch timeout between 5 and 10 minutes, like client-go's reflector. */
function randomWatchTimeoutSeconds(random: () => number = Math.random): number {
  return 300 + Math.floor(random() * 301);
}

interface SelectorOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

/** Query parameters of one watch request. */
export function watchQuery(resourceVersion: string, selectors: SelectorOptions, random: () => number = Math.random): Record<string, string> {
  return {
    ...selectorQuery(selectors),
    resourceVersion,
    allowWatchBookmarks: 'true',
    timeoutSeconds: String(randomWatchTimeoutSeconds(random)),
  };
}

export function selectorQuery(selectors: SelectorOptions): Record<string, string> {
  const q: Record<string, string> = {};
  if (selectors.labelSelector) q.labelSelector = selectors.labelSelector;
  if (selectors.fieldSelector) q.fieldSelector = selectors.fieldSelector;
  return q;
}

