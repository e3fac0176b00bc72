import { ApiException, CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { Observable } from 'rxjs';
import { decode } from '../../src/api/decode.js';
import type { ServiceAccountImport } from '../../src/api/import.js';
import { API_GROUP, API_VERSION, IMPORT_PLURAL } from '../../src/constants.js';
import type { Logger } from '../../src/logger.js';
import type { ImportEvent, ImportFetch } from './lookup.js';
import { projectImport } from './lookup.js';
import { describeError } from './errors.js';

const ListBody = t.type({
  metadata: t.type({ resourceVersion: t.string }),
  items: t.union([t.array(t.unknown), t.null]),
});
const WatchStatus = t.partial({ code: t.number, message: t.string });
const Meta = t.type({ metadata: t.partial({ resourceVersion: t.string }) });

const IMPORTS_PATH = `/apis/${API_GROUP}/${API_VERSION}/${IMPORT_PLURAL}`;

class Gone extends Error {}

/**
 * A small list+watch of every ServiceAccountImport (all namespaces), for the webhook's lookup: emits
 * RESET after each list, then changes; resumes from the last resourceVersion after a normal end or
 * the client's inactivity timeout, relists after 410 Gone or an error, with capped exponential
 * backoff. Unsubscribing aborts the watch.
 *
 * The shared cache (`streams/watch.ts`) was not committed when this was written; this source has
 * the same event shape, so switching is a one-line change in main.ts.
 */
export function importEvents(kc: KubeConfig, log: Logger): Observable<ImportEvent> {
  return new Observable<ImportEvent>((subscriber) => {
    const api = kc.makeApiClient(CustomObjectsApi);
    let stopped = false;
    let abort: AbortController | undefined;
    let wake: (() => void) | undefined;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        timer.unref();
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });

    const watchFrom = (rv: string): Promise<string> =>
      new Promise((resolve, reject) => {
        let last = rv;
        new Watch(kc)
          .watch(
            IMPORTS_PATH,
            { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) },
            (phase: string, obj: unknown) => {
              const m = decode(Meta, obj);
              if (phase === 'ERROR') {
                const s = decode(WatchStatus, obj);
                abort?.abort();
                reject(s.ok && s.value.code === 410 ? new Gone('resourceVersion too old') : new Error(`watch error: ${s.ok ? s.value.message : 'unknown'}`));
                return;
              }
              if (m.ok && m.value.metadata.resourceVersion) last = m.value.metadata.resourceVersion;
              if (phase === 'BOOKMARK') return;
              const sai = projectImport(obj);
              if (!sai) {
                log.warn('skipping a ServiceAccountImport that does not decode', { phase });
                return;
              }
              if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') subscriber.next({ type: phase, object: sai });
            },
            (err: unknown) => {
              const name = (err as { name?: string } | null)?.name;
              if (!err || name === 'AbortError' || name === 'TimeoutError') resolve(last);
              else reject(err instanceof Error ? err : new Error(String(err)));
            },
          )
          .then((c) => {
            abort = c;
            if (stopped) c.abort();
          })
          .catch(reject);
      });

    const run = async () => {
      let rv: string | undefined;
      let failures = 0;
      while (!stopped) {
        try {
          if (rv === undefined) {
            const raw: unknown = await api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: IMPORT_PLURAL });
            const list = decode(ListBody, raw);
            if (!list.ok) throw new Error(`invalid ServiceAccountImport list: ${list.problems.join('; ')}`);
            const items = (list.value.items ?? []).map(projectImport).filter((x): x is ServiceAccountImport => x !== undefined);
            rv = list.value.metadata.resourceVersion;
            subscriber.next({ type: 'RESET', items });
          }
          rv = await watchFrom(rv);
          failures = 0;
        } catch (e) {
          if (stopped) break;
          if (!(e instanceof Gone)) failures++;
          rv = undefined;
          const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.8 + Math.random() * 0.4);
          log.warn('import watch failed, relisting', { error: describeError(e), retryInMs: Math.round(delay) });
          await sleep(e instanceof Gone ? 0 : delay);
        }
      }
    };
    void run();
    return () => {
      stopped = true;
      abort?.abort();
      wake?.();
    };
  });
}

/** GET one import (the lookup's fallback on a cache miss); undefined on 404. */
export function importFetcher(kc: KubeConfig): ImportFetch {
  const api = kc.makeApiClient(CustomObjectsApi);
  return async (namespace, name) => {
    try {
      const raw: unknown = await api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: IMPORT_PLURAL, name });
      const sai = projectImport(raw);
      if (!sai) throw new Error(`service account import "${name}" in namespace "${namespace}" does not decode`);
      return sai;
    } catch (e) {
      if (e instanceof ApiException && e.code === 404) return undefined;
      throw e;
    }
  };
}
