// Turns a loader into an observable: load at subscription, then again a short while after any
// file-system event in the watched directories (and on a slow poll, in case an event is missed),
// emitting only when the fingerprint of what was read changed.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Observable } from 'rxjs';
import type { Loaded } from './loaders.js';

/** Timing of the observable loaders. */
export interface WatchTiming {
  /**
   * How long to wait after a file-system event before re-reading, so a burst of events (one
   * kubelet update makes several) costs one read. Default 50 ms.
   */
  settleMs?: number;
  /** Re-read at this interval even without events (a safety net). Default 10 s. */
  pollIntervalMs?: number;
}

/** Default {@link WatchTiming.settleMs}. */
const DEFAULT_SETTLE_MS = 50;
/** Default {@link WatchTiming.pollIntervalMs}. */
const DEFAULT_POLL_INTERVAL_MS = 10_000;
/** Consecutive failed re-reads after which the observable errors. */
const MAX_CONSECUTIVE_FAILURES = 3;

/** The directories to watch for a mount root: the root and every directory in it. */
export async function mountRootDirectories(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  return [root, ...entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => path.join(root, e.name))];
}

interface Watched {
  watcher: FSWatcher;
  ino: number;
}

/**
 * Emits `load()`'s value at subscription and after every change of its fingerprint. File-system
 * events in `directories()` (re-evaluated after each load) trigger a re-read after `settleMs`;
 * a poll every `pollIntervalMs` does too. The first load's error is emitted at once; later
 * failures are retried and only emitted after {@link MAX_CONSECUTIVE_FAILURES} in a row (so a
 * file caught mid-write by a non-atomic writer does not end the stream). Unsubscribing closes
 * every watcher and timer.
 */
export function watchLoaded<T>(load: () => Promise<Loaded<T>>, directories: () => Promise<string[]>, timing: WatchTiming = {}): Observable<T> {
  const settleMs = timing.settleMs ?? DEFAULT_SETTLE_MS;
  const pollIntervalMs = timing.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  return new Observable<T>((subscriber) => {
    const watched = new Map<string, Watched>();
    let closed = false;
    let running = false;
    let dirty = false;
    let timer: NodeJS.Timeout | undefined;
    let lastFingerprint: string | undefined;
    let failures = 0;

    const schedule = (delayMs: number) => {
      if (closed || timer || running) return;
      timer = setTimeout(() => {
        timer = undefined;
        void run(false);
      }, delayMs);
    };
    const trigger = () => {
      dirty = true;
      schedule(settleMs);
    };

    const unwatch = (dir: string) => {
      watched.get(dir)?.watcher.close();
      watched.delete(dir);
    };

    const syncWatchers = async () => {
      const wanted = new Set(await directories());
      for (const dir of [...watched.keys()]) if (!wanted.has(dir)) unwatch(dir);
      for (const dir of wanted) {
        const st = await stat(dir).catch(() => undefined);
        if (closed) return;
        const current = watched.get(dir);
        if (!st?.isDirectory()) {
          if (current) unwatch(dir);
          continue;
        }
        if (current && current.ino === st.ino) continue;
        // A directory removed and created again is a new inode: the old watch sees nothing more.
        if (current) unwatch(dir);
        try {
          const watcher = watch(dir, { persistent: true }, trigger);
          watcher.on('error', () => {
            unwatch(dir);
            trigger();
          });
          watched.set(dir, { watcher, ino: st.ino });
        } catch {
          // Gone between stat and watch: the root's watcher or the poll will notice.
        }
      }
    };

    const run = async (initial: boolean) => {
      if (closed) return;
      running = true;
      dirty = false;
      try {
        await syncWatchers();
        const loaded = await load();
        if (closed) return;
        failures = 0;
        if (loaded.fingerprint !== lastFingerprint) {
          lastFingerprint = loaded.fingerprint;
          subscriber.next(loaded.value);
        }
      } catch (e) {
        if (closed) return;
        failures++;
        if (initial || failures >= MAX_CONSECUTIVE_FAILURES) {
          subscriber.error(e);
          return;
        }
        dirty = true;
      } finally {
        running = false;
      }
      if (dirty) schedule(failures > 0 ? settleMs * 4 : settleMs);
    };

    const poll = setInterval(trigger, pollIntervalMs);
    void run(true);

    return () => {
      closed = true;
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      for (const dir of [...watched.keys()]) unwatch(dir);
    };
  });
}
