/**
 * The controller-runtime peer of bench:controller (test/bench/go-peer, SPEC §12): built from its
 * Go module into the cache outside the repository by test/tools/build.sh, run as a local process
 * with the controller's ServiceAccount kubeconfig, and read through its log ("became leader") and
 * its /metrics (peer_imports_ready, peer_tokens_minted_total).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runBuildScript } from '../harness/binaries.js';
import { GiveUp, waitFor } from '../harness/https.js';
import { freePort } from '../harness/ports.js';
import { ManagedProcess } from '../harness/process.js';

/** The TokenRequest plan the bench decided for one remote ServiceAccount of one source (`plan` in test/bench/go-peer/main.go). */
export interface PeerPlan {
  clusterName: string;
  namespace: string;
  name: string;
  expirationSeconds: number;
  audiences: string[];
  boundSecret?: string;
  boundSecretUid?: string;
  fingerprint: string;
}

export interface RunningPeer {
  /** The Go process (not its guard): for /proc readings. */
  pid: number;
  /** When it became leader (ms since the epoch, its own clock): the throughput clock starts here. */
  ledAt: number;
  metric(name: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** The peer's binary: built on first use (needs Go; minutes on a cold Go cache), then from the cache. */
export function buildPeer(): string {
  return runBuildScript(path.join(import.meta.dirname, '..', 'tools', 'build.sh'), [path.join(import.meta.dirname, 'go-peer')], 'building the controller-runtime peer test/bench/go-peer (see the [tools:go-peer] lines above; --skip-peer runs the bench without it)');
}

/**
 * The pid of the guard's child whose command line contains `marker` (ManagedProcess runs every
 * command behind a shell guard, so the guard's pid is not the measured process's). The guard's
 * own subshells carry its command line too: they are skipped.
 */
export function childPid(guardPid: number, marker: string): number | undefined {
  for (const t of readdirSync(`/proc/${guardPid}/task`)) {
    const kids = readFileSync(`/proc/${guardPid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    for (const k of kids) {
      const argv = readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0');
      if (argv[0] !== 'bash' && argv.some((a) => a.includes(marker))) return k;
    }
  }
  return undefined;
}

/** Starts the peer against the cluster of `kubeconfig` and waits until it leads. */
export async function startPeer(binary: string, o: { kubeconfig: string; plans: PeerPlan[]; concurrency: number; dir: string }): Promise<RunningPeer> {
  const plansFile = path.join(o.dir, 'peer-plans.json');
  writeFileSync(plansFile, JSON.stringify(o.plans));
  const logFile = path.join(o.dir, 'peer.log');
  writeFileSync(logFile, '');
  const metricsPort = await freePort();
  const proc = new ManagedProcess('go-peer', binary, ['--kubeconfig', o.kubeconfig, '--plans', plansFile, `--metrics-bind-address=127.0.0.1:${metricsPort}`, `--concurrency=${o.concurrency}`], logFile);
  try {
    let leaderLine: string | undefined;
    await waitFor('the peer to lead', () => {
      if (!proc.running) throw new GiveUp(`the peer exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      leaderLine = readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('"became leader"'));
      return leaderLine !== undefined;
    }, 60_000, 50);
    const pid = childPid(proc.pid, binary);
    if (!pid) throw new Error('cannot find the peer process under its guard');
    return {
      pid,
      ledAt: Date.parse((JSON.parse(leaderLine!) as { timestamp: string }).timestamp),
      metric: async (name) => {
        if (!proc.running) throw new GiveUp(`the peer exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const line = body.split('\n').find((l) => l.startsWith(`${name} `));
        return line ? Number(line.split(' ').pop()) : undefined;
      },
      stop: () => proc.stop(),
    };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}
