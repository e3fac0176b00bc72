// Waiting for one object to reach a condition, fed by a list+watch of that object (the same
// source and fold the controller's caches use), not by polling: the wait ends on the watch event
// that satisfies it. Used by kubemcsa's --wait and by tests.
import type { KubeConfig } from '@kubernetes/client-node';
import { filter, firstValueFrom, map, scan, throwError, timeout, type Observable } from 'rxjs';
import type { ListWatchTransport } from './kube-transport.js';
import { listWatch, type WatchEvent, type WatchHealth } from './watch.js';

/** The wait's deadline passed; the message says what was last seen. */
export class WaitTimeout extends Error {
  override readonly name = 'WaitTimeout';
}

interface WaitForObjectOptions<T> {
  kubeConfig: KubeConfig;
  /** The collection holding the object, e.g. `/api/v1/namespaces` or `/apis/g/v/namespaces/ns/things`. */
  collectionPath: string;
  name: string;
  /** Decodes one raw object (undefined or throwing: skipped, as in every list+watch). */
  project: (raw: unknown) => T | undefined;
  /** Names the object in messages, e.g. `"ServiceAccountImport x/y in target cluster c"`. */
  describe: string;
  /** True once the wait is over; `current` is undefined while the object does not exist. */
  until: (current: T | undefined) => boolean;
  timeoutMs: number;
  /** The deadline's message, given the last state seen (and the watch's last error, if any). */
  onTimeout: (last: T | undefined, watchError: string | undefined) => string;
  /** Test seam; defaults to client-node's transport. */
  transport?: ListWatchTransport;
}

/** The object's state after each event: known only after the first LIST (RESET). */
function objectStates<T>(events$: Observable<WatchEvent<T>>, name: (item: T) => string, wanted: string): Observable<T | undefined> {
  return events$.pipe(
    scan(
      (acc: { synced: boolean; current: T | undefined }, e: WatchEvent<T>) => {
        if (e.type === 'RESET') return { synced: true, current: e.items.find((i) => name(i) === wanted) };
        if (name(e.object) !== wanted) return acc;
        return { synced: acc.synced, current: e.type === 'DELETED' ? undefined : e.object };
      },
      { synced: false, current: undefined },
    ),
    filter((s) => s.synced),
    map((s) => s.current),
  );
}

/**
 * Resolves with the object's state (undefined: absent) as soon as `until` holds for it; rejects
 * with {@link WaitTimeout} at the deadline. Unsubscribing (resolve or reject) closes the watch.
 */
export function waitForObject<T extends { metadata: { name: string } }>(opts: WaitForObjectOptions<T>): Promise<T | undefined> {
  let last: T | undefined;
  let health: WatchHealth | undefined;
  const events$ = listWatch<T>({
    kubeConfig: opts.kubeConfig,
    path: opts.collectionPath,
    fieldSelector: `metadata.name=${opts.name}`,
    project: opts.project,
    describe: opts.describe,
    onHealth: (h) => (health = h),
    // A relist now and then is pointless for a wait of minutes.
    resyncIntervalMs: 0,
    ...(opts.transport ? { transport: opts.transport } : {}),
  });
  return firstValueFrom(
    objectStates(events$, (o) => o.metadata.name, opts.name).pipe(
      map((current) => {
        last = current;
        return current;
      }),
      filter((current) => opts.until(current)),
      timeout({
        first: opts.timeoutMs,
        with: () => throwError(() => new WaitTimeout(opts.onTimeout(last, health && !health.connected ? health.lastError : undefined))),
      }),
    ),
  );
}
