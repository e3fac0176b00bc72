import { ServiceAccountImport, slimImport } from '../../src/api/import.js';
import { decode } from '../../src/api/decode.js';

/** How the webhook finds a pod's imports. */
export interface ImportLookup {
  /** The import `namespace/name`, or undefined when it does not exist. Rejects when it cannot tell. */
  get(namespace: string, name: string): Promise<ServiceAccountImport | undefined>;
  /**
   * Optional synchronous answer from memory: `{ value }` when the lookup already knows (found, or
   * known missing), undefined when only `get` can tell. Lets the common case skip a promise round.
   */
  known?(namespace: string, name: string): { value: ServiceAccountImport | undefined } | undefined;
}

/** A single GET of one import from the API server: undefined on 404. */
export type ImportFetch = (namespace: string, name: string) => Promise<ServiceAccountImport | undefined>;

export interface LookupCounters {
  lookup(source: 'cache' | 'api', result: 'found' | 'missing' | 'error'): void;
  /** API lookups running (holding a slot) and waiting for one. */
  lookupSlots?(running: number, waiting: number): void;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The import as admission caches it (`slimImport`), or undefined when it does not decode. */
export function projectImport(raw: unknown): ServiceAccountImport | undefined {
  const r = decode(ServiceAccountImport, raw);
  return r.ok ? slimImport(r.value) : undefined;
}

/** The folded watch cache the lookup reads (`streams/cache.ts`'s SharedCache fits). */
interface ImportStore {
  get(key: string): ServiceAccountImport | undefined;
  readonly synced: boolean;
}

/** Bounds on the API lookups of cache misses. */
interface LookupLimits {
  /** API lookups running at once, over all admissions (the rest wait in arrival order). */
  maxInFlight: number;
  /** How long a lookup may wait for a slot; past it, it fails (the admission is denied, not stalled). */
  slotWaitMs: number;
  /** How long "this import does not exist" (a 404) is remembered. */
  negativeTtlMs: number;
  /** Imports remembered as missing at once (the oldest are forgotten first). */
  negativeMaxEntries: number;
}

export const DEFAULT_LOOKUP_LIMITS: LookupLimits = { maxInFlight: 16, slotWaitMs: 2000, negativeTtlMs: 5000, negativeMaxEntries: 10_000 };

/** A lookup that could not get a slot in time (every slot busy with other lookups). */
class LookupBusyError extends Error {
  override readonly name = 'LookupBusyError';
}

/**
 * The webhook's import lookup: the shared list+watch cache first, a GET on a miss (an import
 * created a moment ago, e.g. in the same `kubectl apply` as the pod's Job, may not have reached the
 * watch yet). Misses are bounded: one GET per import in flight whoever asks (deduplicated), at
 * most `maxInFlight` GETs at once, a slot waited for at most `slotWaitMs`, and a 404 remembered for
 * `negativeTtlMs` (so a pod naming many missing imports, repeated, costs the API server nothing).
 * An import the watch delivers is found at once, whatever the negative cache says.
 */
export class ImportCache implements ImportLookup {
  private readonly limits: LookupLimits;
  private readonly inFlight = new Map<string, Promise<ServiceAccountImport | undefined>>();
  private readonly missing = new Map<string, number>();
  private readonly waiting: { start: () => void; timer: ReturnType<typeof setTimeout> }[] = [];
  private running = 0;

  constructor(
    private readonly store: ImportStore,
    private readonly fetch: ImportFetch,
    private readonly counters?: LookupCounters,
    limits: Partial<LookupLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_LOOKUP_LIMITS, ...limits };
  }

  get synced(): boolean {
    return this.store.synced;
  }

  /** API lookups holding a slot now (for tests and metrics). */
  get runningLookups(): number {
    return this.running;
  }

  known(namespace: string, name: string): { value: ServiceAccountImport | undefined } | undefined {
    const k = key(namespace, name);
    const cached = this.store.get(k);
    if (cached) {
      this.counters?.lookup('cache', 'found');
      return { value: cached };
    }
    const until = this.missing.get(k);
    if (until === undefined) return undefined;
    if (until > this.now()) {
      this.counters?.lookup('cache', 'missing');
      return { value: undefined };
    }
    this.missing.delete(k);
    return undefined;
  }

  get(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    const known = this.known(namespace, name);
    if (known) return Promise.resolve(known.value);
    const k = key(namespace, name);
    const shared = this.inFlight.get(k);
    if (shared) return shared;
    const p = this.fetchBounded(k, namespace, name).finally(() => this.inFlight.delete(k));
    this.inFlight.set(k, p);
    return p;
  }

  private async fetchBounded(k: string, namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    await this.acquire(namespace, name);
    try {
      const fetched = await this.fetch(namespace, name);
      this.counters?.lookup('api', fetched ? 'found' : 'missing');
      if (!fetched) this.rememberMissing(k);
      return fetched;
    } catch (e) {
      this.counters?.lookup('api', 'error');
      throw e;
    } finally {
      this.release();
    }
  }

  private rememberMissing(k: string): void {
    if (this.limits.negativeTtlMs <= 0) return;
    this.missing.delete(k);
    this.missing.set(k, this.now() + this.limits.negativeTtlMs);
    // Maps iterate in insertion order: the first keys are the oldest.
    for (const old of this.missing.keys()) {
      if (this.missing.size <= this.limits.negativeMaxEntries) break;
      this.missing.delete(old);
    }
  }

  private acquire(namespace: string, name: string): Promise<void> {
    if (this.running < this.limits.maxInFlight) {
      this.running++;
      this.report();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        start: () => {
          clearTimeout(entry.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          this.report();
          reject(new LookupBusyError(`no lookup slot free within ${this.limits.slotWaitMs} ms for service account import "${name}" in namespace "${namespace}" (${this.limits.maxInFlight} lookups busy)`));
        }, this.limits.slotWaitMs),
      };
      this.waiting.push(entry);
      this.report();
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.start();
    else this.running--;
    this.report();
  }

  private report(): void {
    this.counters?.lookupSlots?.(this.running, this.waiting.length);
  }
}
