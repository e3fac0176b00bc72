// What the benchmarks measure with, free of the cluster harness (so that a bundled worker process
// such as live-worker.ts loads only this, client-node and the controller's watch): percentiles, a
// watch of imports' Ready conditions, the controller's metrics, this process's event-loop pauses,
// where the machine's CPU went.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL } from '../../src/constants.js';
import { listWatch } from '../../streams/watch.js';
import { parseStat, TICK_MS } from './proc.js';

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

/** The machine's CPU time (ms; all CPUs) and, by process name, the CPU time of the processes running now, from /proc. */
export interface CpuSnapshot {
  machine: { busyMs: number; totalMs: number; stealMs: number };
  /** CPU time (user + system) so far, by `comm`, and by pid for the pids asked for. */
  byName: Map<string, number>;
  byPid: Map<number, number>;
}

/** Reads /proc once: the machine's CPU counters and every process's CPU time (`pids` kept apart by pid). */
export function cpuSnapshot(pids: number[] = []): CpuSnapshot {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const totalTicks = user + nice + system + idle + iowait + irq + softirq + steal;
  const byName = new Map<string, number>();
  const byPid = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const { comm, cpuMs: ms } = parseStat(stat);
    const pid = Number(entry);
    if (pids.includes(pid)) byPid.set(pid, ms);
    else byName.set(comm, (byName.get(comm) ?? 0) + ms);
  }
  return { machine: { busyMs: (totalTicks - idle - iowait) * TICK_MS, totalMs: totalTicks * TICK_MS, stealMs: steal * TICK_MS }, byName, byPid };
}

/**
 * Where the machine's CPU went between two snapshots, as a share of one CPU (100 % = one CPU
 * busy): the machine in all, the pids named in `pids`, the process names in `names`, and the
 * rest. A process that started or ended in between counts from zero or not at all.
 */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot, pids: Record<string, number>, names: Record<string, string[]>): string {
  const wallMs = (b.machine.totalMs - a.machine.totalMs) / os.cpus().length;
  const share = (ms: number) => `${Math.round((100 * ms) / wallMs)} %`;
  const parts: string[] = [];
  let known = 0;
  for (const [label, pid] of Object.entries(pids)) {
    const ms = (b.byPid.get(pid) ?? 0) - (a.byPid.get(pid) ?? 0);
    known += ms;
    parts.push(`${label} ${share(ms)}`);
  }
  for (const [label, comms] of Object.entries(names)) {
    const ms = comms.reduce((s, c) => s + (b.byName.get(c) ?? 0) - (a.byName.get(c) ?? 0), 0);
    known += ms;
    parts.push(`${label} ${share(ms)}`);
  }
  const busy = b.machine.busyMs - a.machine.busyMs;
  return `machine ${share(busy)} of ${os.cpus().length * 100} % (steal ${share(b.machine.stealMs - a.machine.stealMs)}): ${parts.join(', ')}, the rest ${share(Math.max(0, busy - known))}`;
}
