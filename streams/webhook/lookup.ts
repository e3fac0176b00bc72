import { BehaviorSubject, type Observable, type Subscription } from 'rxjs';
import { ServiceAccountImport } from '../../src/api/import.js';
import { decode } from '../../src/api/decode.js';
import type { Logger } from '../../src/logger.js';

/** How the webhook finds a pod's imports. */
export interface ImportLookup {
  /** The import `namespace/name`, or undefined when it does not exist. Rejects when it cannot tell. */
  get(namespace: string, name: string): Promise<ServiceAccountImport | undefined>;
}

/** The events a list+watch source emits (the shape of `streams/watch.ts`'s `WatchEvent`). */
export type ImportEvent =
  | { type: 'RESET'; items: ServiceAccountImport[] }
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: ServiceAccountImport };

/** A single GET of one import from the API server: undefined on 404. */
export type ImportFetch = (namespace: string, name: string) => Promise<ServiceAccountImport | undefined>;

export interface LookupCounters {
  lookup(source: 'cache' | 'api', result: 'found' | 'missing' | 'error'): void;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * Keeps only what admission needs (name, namespace, generation, spec, status): no managedFields,
 * no annotations, so the cache stays small with many imports.
 */
export function projectImport(raw: unknown): ServiceAccountImport | undefined {
  const r = decode(ServiceAccountImport, raw);
  if (!r.ok) return undefined;
  const { metadata, spec, status } = r.value;
  const meta: ServiceAccountImport['metadata'] = { name: metadata.name };
  if (metadata.namespace !== undefined) meta.namespace = metadata.namespace;
  if (metadata.generation !== undefined) meta.generation = metadata.generation;
  if (metadata.resourceVersion !== undefined) meta.resourceVersion = metadata.resourceVersion;
  return status ? { metadata: meta, spec, status } : { metadata: meta, spec };
}

/**
 * The webhook's import lookup: a map folded from a list+watch event stream, with a GET on a miss
 * (an import created a moment ago, e.g. in the same `kubectl apply` as the pod's Job, may not have
 * reached the watch yet). `synced$` turns true after the first full list.
 */
export class ImportCache implements ImportLookup {
  private readonly items = new Map<string, ServiceAccountImport>();
  private readonly syncedSubject = new BehaviorSubject(false);
  readonly synced$: Observable<boolean> = this.syncedSubject.asObservable();
  private subscription: Subscription | undefined;

  constructor(
    private readonly events: Observable<ImportEvent>,
    private readonly fetch: ImportFetch,
    private readonly log: Logger,
    private readonly counters?: LookupCounters,
  ) {}

  get synced(): boolean {
    return this.syncedSubject.value;
  }

  get size(): number {
    return this.items.size;
  }

  start(): void {
    this.subscription ??= this.events.subscribe({
      next: (e) => this.apply(e),
      error: (e: unknown) => this.log.error('import watch failed', { error: e }),
    });
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private apply(e: ImportEvent): void {
    if (e.type === 'RESET') {
      this.items.clear();
      for (const sai of e.items) this.items.set(key(sai.metadata.namespace ?? '', sai.metadata.name), sai);
      if (!this.syncedSubject.value) {
        this.log.info('import cache synced', { imports: this.items.size });
        this.syncedSubject.next(true);
      }
      return;
    }
    const k = key(e.object.metadata.namespace ?? '', e.object.metadata.name);
    if (e.type === 'DELETED') this.items.delete(k);
    else this.items.set(k, e.object);
  }

  async get(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    const cached = this.items.get(key(namespace, name));
    if (cached) {
      this.counters?.lookup('cache', 'found');
      return cached;
    }
    try {
      const fetched = await this.fetch(namespace, name);
      this.counters?.lookup('api', fetched ? 'found' : 'missing');
      return fetched;
    } catch (e) {
      this.counters?.lookup('api', 'error');
      throw e;
    }
  }
}

/** A fixed set of imports (tests, the benchmark). */
export class StaticImportLookup implements ImportLookup {
  private readonly items = new Map<string, ServiceAccountImport>();
  constructor(imports: ServiceAccountImport[]) {
    for (const sai of imports) this.items.set(key(sai.metadata.namespace ?? '', sai.metadata.name), sai);
  }
  get(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    return Promise.resolve(this.items.get(key(namespace, name)));
  }
}
