// A list+watch transport a test answers request by request (streams/kube-transport.ts's seam).
import type { ListPage, ListWatchTransport } from '../../../streams/kube-transport.js';
import type { WatchEnd } from '../../../streams/watch-policy.js';

type WatchEventHandler = Parameters<ListWatchTransport['watch']>[2];

export interface PendingList {
  query: Record<string, string>;
  resolve(page: ListPage): void;
  reject(e: unknown): void;
}

export interface PendingWatch {
  query: Record<string, string>;
  signal: AbortSignal;
  event: WatchEventHandler;
  connect(): void;
  end(e: WatchEnd): void;
}

/** A transport the test answers request by request. */
export class ScriptedTransport implements ListWatchTransport {
  lists: PendingList[] = [];
  watches: PendingWatch[] = [];

  list(_path: string, query: Record<string, string>): Promise<ListPage> {
    return new Promise((resolve, reject) => this.lists.push({ query, resolve, reject }));
  }

  watch(_path: string, query: Record<string, string>, onEvent: WatchEventHandler, onConnected: () => void, signal: AbortSignal): Promise<WatchEnd> {
    return new Promise((resolve) => {
      signal.addEventListener('abort', () => resolve({ kind: 'stopped' }), { once: true });
      this.watches.push({ query, signal, event: onEvent, connect: onConnected, end: resolve });
    });
  }

  get lastWatch(): PendingWatch {
    return this.watches.at(-1)!;
  }
}

