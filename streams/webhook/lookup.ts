import { ServiceAccountImport } from '../../src/api/import.js';
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

/** The folded watch cache the lookup reads (`streams/cache.ts`'s SharedCache fits). */
export interface ImportStore {
  get(key: string): ServiceAccountImport | undefined;
  readonly synced: boolean;
}

/**
 * The webhook's import lookup: the shared list+watch cache first, a GET on a miss (an import
 * created a moment ago, e.g. in the same `kubectl apply` as the pod's Job, may not have reached the
 * watch yet).
 */
export class ImportCache implements ImportLookup {
  constructor(
    private readonly store: ImportStore,
    private readonly fetch: ImportFetch,
    private readonly counters?: LookupCounters,
  ) {}

  get synced(): boolean {
    return this.store.synced;
  }

  known(namespace: string, name: string): { value: ServiceAccountImport | undefined } | undefined {
    const cached = this.store.get(key(namespace, name));
    if (!cached) return undefined;
    this.counters?.lookup('cache', 'found');
    return { value: cached };
  }

  async get(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    const known = this.known(namespace, name);
    if (known) return known.value;
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
  known(namespace: string, name: string): { value: ServiceAccountImport | undefined } {
    return { value: this.items.get(key(namespace, name)) };
  }
}
