import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../../src/logger.js';
import { describeError } from '../../src/describe-error.js';

/**
 * Records Kubernetes Events off the reconcile path, as client-go's broadcaster does: a bounded
 * queue drained by a couple of writers. When the queue is full, new Events are dropped (and
 * counted): Events are advisory, reconciles must never wait on them.
 */
export class EventRecorder {
  private readonly queue: CoreV1Event[] = [];
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  dropped = 0;

  constructor(
    private readonly create: (event: CoreV1Event) => Promise<void>,
    private readonly logger: Logger,
    private readonly opts: { maxQueue?: number; concurrency?: number } = {},
  ) {}

  record(event: CoreV1Event): void {
    if (this.queue.length >= (this.opts.maxQueue ?? 1000)) {
      this.dropped++;
      return;
    }
    this.queue.push(event);
    this.pump();
  }

  /** Resolves when every queued Event has been written (or failed). */
  flush(): Promise<void> {
    if (this.queue.length === 0 && this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (this.active < (this.opts.concurrency ?? 2) && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.active++;
      void this.write(event).finally(() => {
        this.active--;
        this.pump();
        if (this.active === 0 && this.queue.length === 0) this.idleWaiters.splice(0).forEach((r) => r());
      });
    }
  }

  private async write(event: CoreV1Event): Promise<void> {
    try {
      await this.create(event);
    } catch (e) {
      this.logger.warn('could not record an Event', { object: `${event.involvedObject.namespace}/${event.involvedObject.name}`, reason: event.reason, error: describeError(e) });
    }
  }
}
