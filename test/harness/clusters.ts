import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { resolveBinaries, type Binaries } from './binaries.js';
import { buildImages } from '../../scripts/image.js';
import { Cluster, kubeconfigFor, type ClusterInfo, type NodeOptions } from './cluster.js';
import { Fabric, Namespaces, nodeAddresses, resolveNodeBinaries, writePauseImage } from './node.js';

const DIR_PREFIX = 'mcsa-clusters-';

/** What a running set of clusters leaves on disk for tests and other processes (`clusters.json`). */
export interface ClusterSetInfo {
  dir: string;
  kubeconfigPath: string;
  clusters: ClusterInfo[];
  ownerPid: number;
  binDir: string;
  kubectl: string;
  /** With nodes: the images loaded into every node (ref → archive). */
  images?: Record<string, string>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes cluster directories left by harness processes that died without cleaning up. */
export function removeStaleClusterDirs(): void {
  for (const entry of readdirSync(os.tmpdir())) {
    if (!entry.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(os.tmpdir(), entry);
    try {
      const owner = Number(readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
      if (owner && pidAlive(owner)) continue;
    } catch {
      // no owner file: a directory from a crashed start
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Several real clusters on loopback (`cluster1`, `cluster2`, …), started in parallel. Stops
 * everything and removes its directory on `stop()`, on SIGINT/SIGTERM/SIGHUP, and (by SIGKILL
 * of the process groups) on process exit.
 */
export class ClusterSet {
  private stopping?: Promise<void>;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: stopping clusters in ${this.info.dir}\n`);
    void this.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  private readonly onExit = () => this.killNow();

  private constructor(
    readonly clusters: Cluster[],
    readonly info: ClusterSetInfo,
    private readonly fabric?: Fabric,
  ) {}

  /**
   * `nodes`: every cluster gets a real node (node.ts): the project's images are built (`npm run
   * image`) and loaded (unless `images: false`: the pause image only), and the whole cluster runs
   * in network/mount/UTS namespaces of its own. `versions`: the Kubernetes minor of each cluster
   * in order (e.g. `['1.37', '1.35']`; a missing or empty entry is the default version).
   */
  static async start(opts: { count?: number; names?: string[]; log?: (m: string) => void; bins?: Binaries; nodes?: boolean; images?: boolean; versions?: string[] } = {}): Promise<ClusterSet> {
    const log = opts.log ?? (() => {});
    const names = opts.names ?? Array.from({ length: opts.count ?? 2 }, (_, i) => `cluster${i + 1}`);
    const bins = opts.bins ?? resolveBinaries();
    const binsOf = names.map((_, i) => (opts.versions?.[i] ? resolveBinaries(opts.versions[i]) : bins));
    removeStaleClusterDirs();
    const dir = mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
    writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
    const started: Cluster[] = [];
    const namespaces: Namespaces[] = [];
    let fabric: Fabric | undefined;
    const stopNamespaces = () => Promise.allSettled([...namespaces.map((n) => n.stop()), fabric?.stop()]);
    const t0 = Date.now();
    // Until the set exists, a signal must still clean up what has started.
    const early = (sig: NodeJS.Signals) => {
      void Promise.allSettled([...started.map((c) => c.stop()), stopNamespaces()]).finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
    };
    const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    sigs.forEach((s) => process.on(s, early));
    let images: Record<string, string> | undefined;
    try {
      let nodeOptions: ((i: number) => Promise<NodeOptions>) | undefined;
      if (opts.nodes) {
        const nodeBins = resolveNodeBinaries();
        mkdirSync(path.join(dir, 'images'));
        const pause = writePauseImage(path.join(dir, 'images', 'pause.tar'), nodeBins);
        if (opts.images !== false) log('building the images (npm run image) for the nodes');
        const built = opts.images === false ? [] : await buildImages(path.join(dir, 'images'));
        images = Object.fromEntries(built.map((b) => [b.ref, b.file]));
        log(`images: ${built.map((b) => `${b.ref} ${b.digest.slice(0, 19)}`).join(', ')}`);
        fabric = await Fabric.create(path.join(dir, 'fabric'), `mcsa-${process.pid}-fabric`, dir);
        nodeOptions = async (i) => {
          const name = names[i - 1]!;
          const ns = await Namespaces.create({ name, dir: path.join(dir, name), cgroup: `mcsa-${process.pid}-${name}`, hostname: `${name}-node`, ownerDir: dir,
            // The `kubernetes` Service address is the API server's own: in-cluster clients need no kube-proxy.
            setup: [`ip addr add ${nodeAddresses(i).kubernetesServiceIp}/32 dev lo`] });
          namespaces.push(ns);
          await fabric!.connect(i, ns, names.length);
          return { ns, index: i, bins: nodeBins, images: [pause, ...built.map((b) => b.file)] };
        };
      }
      log(`starting ${names.length} clusters (${names.join(', ')}) in ${dir}${opts.nodes ? ', each with a node' : ''}`);
      const results = await Promise.allSettled(
        names.map(async (name, i) => {
          const node = nodeOptions ? await nodeOptions(i + 1) : undefined;
          const c = await Cluster.start({ name, dir: path.join(dir, name), bins: binsOf[i]!, log, node });
          started.push(c);
          return c;
        }),
      );
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) {
        await Promise.allSettled(started.map((c) => c.stop()));
        await stopNamespaces();
        rmSync(dir, { recursive: true, force: true });
        throw (failed as PromiseRejectedResult).reason;
      }
    } catch (e) {
      await stopNamespaces();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      sigs.forEach((s) => process.off(s, early));
    }
    const clusters = names.map((n) => started.find((c) => c.name === n)!);
    const infos = clusters.map((c) => c.info);
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, stringify(kubeconfigFor(infos)), { mode: 0o600 });
    const info: ClusterSetInfo = { dir, kubeconfigPath, clusters: infos, ownerPid: process.pid, binDir: bins.dir, kubectl: bins.kubectl, ...(images ? { images } : {}) };
    writeFileSync(path.join(dir, 'clusters.json'), JSON.stringify(info, null, 2), { mode: 0o600 });
    log(`${names.length} clusters ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const set = new ClusterSet(clusters, info, fabric);
    sigs.forEach((s) => process.on(s, set.onSignal));
    process.on('exit', set.onExit);
    return set;
  }

  get statePath(): string {
    return path.join(this.info.dir, 'clusters.json');
  }

  private readonly cleanups: Array<() => Promise<void>> = [];

  /** Runs `fn` (e.g. stopping processes that use the clusters) before the clusters stop. */
  addCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  /** Stops every process and removes the directory. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.allSettled(this.cleanups.splice(0).reverse().map((fn) => fn()));
      await Promise.allSettled(this.clusters.map((c) => c.stop()));
      await this.fabric?.stop();
      rmSync(this.info.dir, { recursive: true, force: true });
      (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).forEach((s) => process.off(s, this.onSignal));
      process.off('exit', this.onExit);
    })();
    return this.stopping;
  }

  /** Last resort on process exit: SIGKILL every process group, then remove the directory. */
  private killNow(): void {
    // Node holders clean up their cgroups (containers included) themselves once asked.
    for (const c of this.clusters) c.terminateNamespaces();
    this.fabric?.ns.terminateNow();
    for (const pid of this.clusters.flatMap((c) => c.pids)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (existsSync(this.info.dir)) rmSync(this.info.dir, { recursive: true, force: true });
  }
}

/** Reads a `clusters.json` written by a running ClusterSet (e.g. the sandbox or Jest's global setup). */
export function readClusterSetInfo(file: string): ClusterSetInfo {
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterSetInfo;
}
