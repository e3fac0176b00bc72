// Abort signals for one request under a long-lived one (a watch loop's stop signal, a reconcile's),
// released when the request ends. `AbortSignal.any` and `AbortSignal.timeout` would do the same,
// but keep their timer until it fires and register each request on the long-lived signal: a loop
// retrying every few seconds against a sick source, or thousands of calls a minute, pile them up.

/** A signal that aborts when `parents` abort or after `timeoutMs`; `release()` when the request is over. */
export function linkedSignal(parents: readonly (AbortSignal | undefined)[], timeoutMs?: number): { signal: AbortSignal; timedOut(): boolean; release(): void } {
  const ac = new AbortController();
  let timedOut = false;
  const links: Array<[AbortSignal, () => void]> = [];
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      ac.abort(parent.reason);
      break;
    }
    const onAbort = () => ac.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    links.push([parent, onAbort]);
  }
  const timer =
    timeoutMs === undefined || ac.signal.aborted
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          ac.abort(new DOMException(`no answer within ${timeoutMs / 1000} s`, 'TimeoutError'));
        }, timeoutMs);
  timer?.unref();
  return {
    signal: ac.signal,
    timedOut: () => timedOut,
    release: () => {
      clearTimeout(timer);
      for (const [parent, onAbort] of links.splice(0)) parent.removeEventListener('abort', onAbort);
    },
  };
}
