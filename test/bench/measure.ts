// What the benchmarks measure with, free of the cluster harness (so that a bundled worker process
// such as live-worker.ts loads only this, client-node and the controller's watch): percentiles, a
// watch of imports' Ready conditions, the controller's metrics, this process's event-loop pauses.
import type { KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL } from '../../src/constants.js';
import { listWatch } from '../../streams/watch.js';

/** The `p`th percentile (nearest rank). */
export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
export const median = (xs: number[]) => pct(xs, 50);

/** A tenant import of ServiceAccount `remote` of source cluster `cluster`. */
export function importBody(ns: string, name: string, cluster: string, remote: { namespace: string; name: string }) {
  return {
    apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'ServiceAccountImport',
    metadata: { name, namespace: ns },
    spec: { clusterName: cluster, namespace: remote.namespace, name: remote.name },
  };
}

/** An import's Ready condition as a watch sees it. */
export interface ImportState {
  name: string;
  cluster: string;
  ready: string;
  reason: string;
}

/**
 * Watches imports in `ns` and resolves, per name, when Ready=True is first seen. `onChange` sees
 * every import's Ready condition as it changes (e.g. to time a reason).
 */
export function readyWatcher(kc: KubeConfig, ns: string, onChange?: (s: ImportState) => void) {
  const readyAt = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  let listed = false;
  const sub = listWatch<ImportState>({
    kubeConfig: kc,
    path: `/apis/${API_GROUP}/${API_VERSION}/namespaces/${ns}/${IMPORT_PLURAL}`,
    describe: 'bench imports',
    project: (raw) => {
      const o = raw as { metadata: { name: string }; spec: { clusterName: string }; status?: { conditions?: { type: string; status: string; reason?: string }[] } };
      const c = o.status?.conditions?.find((x) => x.type === 'Ready');
      return { name: o.metadata.name, cluster: o.spec.clusterName, ready: c?.status ?? '', reason: c?.reason ?? '' };
    },
  }).subscribe((e) => {
    if (e.type === 'RESET') listed = true;
    if (e.type === 'DELETED') return;
    const objs = e.type === 'RESET' ? e.items : [e.object];
    for (const o of objs) {
      onChange?.(o);
      if (o.ready === 'True' && !readyAt.has(o.name)) {
        readyAt.set(o.name, performance.now());
        waiters.get(o.name)?.();
      }
    }
  });
  return {
    readyAt,
    get listed() {
      return listed;
    },
    when: (name: string) => (readyAt.has(name) ? Promise.resolve() : new Promise<void>((r) => waiters.set(name, r))),
    stop: () => sub.unsubscribe(),
  };
}

/** The sum of every sample of counter `name` (all label sets) in a Prometheus text exposition. */
export function metricSum(text: string, name: string): number {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/**
 * Pauses of this process's event loop: a 5 ms timer that fires more than `thresholdMs` late.
 * `stop()` returns each pause's length and when it began, in seconds after `since` (a
 * `performance.now()`). A bench uses it to tell its own stalls from the measured process's.
 */
export function loopPauses(since: number, thresholdMs = 20) {
  const pauses: Array<{ atS: number; ms: number }> = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late > thresholdMs) pauses.push({ atS: (last - since) / 1000, ms: late });
    last = now;
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return pauses;
    },
  };
}
