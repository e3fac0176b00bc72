// Real nodes for harness clusters (docs/adr/0016-nodes-and-images.md, ../shared notes on real
// nodes): every cluster lives in network, mount and UTS namespaces of its own, held by one
// "holder" process, with its processes (etcd, kube-apiserver, controllers, containerd, kubelet and
// so every shim and container) in one cgroup. The holder is also the cleanup: on SIGTERM, or when
// the harness dies and its guard signals it, it kills everything in that cgroup, removes the
// cgroups, and the namespaces (with every mount, pod network and /run) vanish with their last
// process. Addresses: loopback on the host, 198.18.0.0/15 inside the namespaces only.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { tarLayer, writeImage } from '../../scripts/oci.js';
import { runBuildScript } from './binaries.js';
import { waitFor } from './https.js';
import { ManagedProcess } from './process.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface NodeBinaries {
  dir: string;
  kubelet: string;
  kubeScheduler: string;
  containerd: string;
  ctr: string;
  runc: string;
  pause: string;
  relay: string;
  cniDir: string;
}

function nodeBinariesIn(dir: string): NodeBinaries {
  const b = (n: string) => path.join(dir, n);
  const bins = { dir, kubelet: b('kubelet'), kubeScheduler: b('kube-scheduler'), containerd: b('containerd'), ctr: b('ctr'), runc: b('runc'), pause: b('pause'), relay: b('relay'), cniDir: b('cni') };
  for (const f of Object.values(bins)) if (!existsSync(f)) throw new Error(`node binary ${f} is missing`);
  return bins;
}

/** The node binaries: from MCSA_NODE_BIN_DIR, else built (or taken from the cache) by test/control-plane/build-node.sh. */
export function resolveNodeBinaries(): NodeBinaries {
  const preset = process.env.MCSA_NODE_BIN_DIR;
  if (preset) return nodeBinariesIn(preset);
  const dir = runBuildScript(path.join(here, '..', 'control-plane', 'build-node.sh'), [], 'node build');
  process.env.MCSA_NODE_BIN_DIR = dir;
  return nodeBinariesIn(dir);
}

/** The addresses of the i-th cluster (1-based) of a set with nodes. */
export function nodeAddresses(i: number) {
  if (i < 1 || i > 250) throw new Error(`cluster index ${i} out of range`);
  return {
    nodeIp: `198.18.0.${i}`,
    podCidr: `198.18.${i}.0/24`,
    serviceCidr: '198.19.0.0/24',
    kubernetesServiceIp: '198.19.0.1',
  };
}

export const SANDBOX_IMAGE = 'localhost/pause:mcsa';

/** The pod sandbox image: the static pause binary, nothing else. */
export function writePauseImage(file: string, bins: NodeBinaries): string {
  writeImage(file, SANDBOX_IMAGE, [tarLayer([{ path: '/pause', type: 'file', mode: 0o755, data: readFileSync(bins.pause) }])],
    { user: '65535:65535', workingDir: '/', env: [], entrypoint: ['/pause'], cmd: [] });
  return file;
}
const CGROUP_HIERARCHIES = '/sys/fs/cgroup';

// The holder: joins its cgroup, sets up the namespaces it was started in, then waits. On TERM/INT
// it SIGKILLs every process in its cgroup tree, leaves and removes the cgroups, and (when the
// harness that owns the directory is gone) removes that directory too.
const HOLDER = [
  'set -eu',
  'cgroot=/sys/fs/cgroup',
  'dir=$1 cg=$2 host=$3 owner=$4 ownerdir=$5; shift 5',
  '# Its output goes to a file, not to the harness: after the harness died, a write to a pipe would kill it mid-cleanup.',
  'exec >>"$dir/holder.log" 2>&1; trap "" PIPE',
  'cgdirs() { for h in $cgroot/*/; do [ -f "$h/cgroup.procs" ] && echo "$h$cg"; done; }',
  'members() { find "$cgroot/pids/$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -vx "$$" || true; }',
  'cleanup() {',
  '  trap - TERM INT; set +e',
  '  echo $$ > "$cgroot/pids/cgroup.procs"',
  '  for _ in $(seq 200); do p=$(members); [ -z "$p" ] && break; kill -KILL $p 2>/dev/null; sleep 0.05; done',
  '  for d in $(cgdirs); do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done',
  '  for _ in $(seq 10); do kill -0 "$owner" 2>/dev/null || break; sleep 0.05; done',
  '  kill -0 "$owner" 2>/dev/null || rm -rf "$ownerdir"',
  '  exit 0',
  '}',
  'trap cleanup TERM INT',
  'for d in $(cgdirs); do',
  '  mkdir -p "$d"',
  '  case "$d" in */cpuset/*)',
  '    cat "$(dirname "$d")/cpuset.cpus" > "$d/cpuset.cpus"; cat "$(dirname "$d")/cpuset.mems" > "$d/cpuset.mems"; echo 1 > "$d/cgroup.clone_children";;',
  '  esac',
  'done',
  'echo $$ > "$cgroot/pids/$cg/cgroup.procs"',
  'hostname "$host"',
  'ip link set lo up',
  'mkdir -p "$dir/var-lib" "$dir/var-log" "$dir/sysctl"',
  'mount --bind "$dir/var-lib" /var/lib',
  'mount --bind "$dir/var-log" /var/log',
  'mount -t tmpfs -o mode=755 tmpfs /run',
  '# The kubelet sets these host sysctls: in this mount namespace it writes to files instead.',
  'for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do',
  '  k=${kv%=*}; f="$dir/sysctl/${k//\\//.}"; echo "${kv#*=}" > "$f"; mount --bind "$f" "/proc/sys/$k"',
  'done',
  'echo 1 > /proc/sys/net/ipv4/ip_forward',
  'for cmd in "$@"; do eval "$cmd"; done',
  'echo $$ > "$dir/holder.pid"',
  'set +e',
  'sleep infinity & wait $!',
  'cleanup',
].join('\n');

/** A process holding new network + mount + UTS namespaces, and the cgroup of everything started in them. */
export class Namespaces {
  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly cgroup: string,
    private readonly holder: ManagedProcess,
    readonly pid: number,
  ) {}

  /** `setup`: shell commands run inside the namespaces before they count as ready (ip addr, …). */
  static async create(opts: { name: string; dir: string; cgroup: string; hostname: string; ownerDir: string; setup?: string[] }): Promise<Namespaces> {
    mkdirSync(opts.dir, { recursive: true });
    const pidFile = path.join(opts.dir, 'holder.pid');
    const holder = new ManagedProcess(`${opts.name}/namespaces`, 'unshare', [
      '--net', '--mount', '--uts', '--propagation', 'private', '--', 'bash', '-c', HOLDER, 'holder',
      opts.dir, opts.cgroup, opts.hostname, String(process.pid), opts.ownerDir, ...(opts.setup ?? []),
    ], path.join(opts.dir, 'namespaces.log'));
    try {
      await waitFor(`${opts.name} namespaces`, async () => {
        if (!holder.running) throw new Error(`the namespace holder exited: ${[holder.logFile, path.join(opts.dir, 'holder.log')].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('').slice(-1500)}`);
        return existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '';
      }, 30_000, 50);
    } catch (e) {
      await holder.stop();
      throw e;
    }
    return new Namespaces(opts.name, opts.dir, opts.cgroup, holder, Number(readFileSync(pidFile, 'utf8')));
  }

  get running(): boolean {
    return this.holder.running;
  }

  get netns(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /** Command and args that run `bin` inside the namespaces and the cgroup. */
  wrap(bin: string, args: string[]): [string, string[]] {
    const procs = path.join(CGROUP_HIERARCHIES, 'pids', this.cgroup, 'cgroup.procs');
    return ['nsenter', ['-t', String(this.pid), '-n', '-m', '-u', '--', 'bash', '-c', 'echo $$ > "$0" && exec "$@"', procs, bin, ...args]];
  }

  /** A long-running process inside the namespaces, logging to `dir/<log>`. */
  start(name: string, bin: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ManagedProcess {
    const [cmd, wrapped] = this.wrap(bin, args);
    return new ManagedProcess(`${this.name}/${name}`, cmd, wrapped, logFile, env);
  }

  /** Runs a command to completion inside the namespaces. */
  exec(bin: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    const [cmd, wrapped] = this.wrap(bin, args);
    return new Promise((resolve) => {
      execFile(cmd, wrapped, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
  }

  async mustExec(bin: string, args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.exec(bin, args, timeoutMs);
    if (r.code !== 0) throw new Error(`${this.name}: ${path.basename(bin)} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim().slice(-1500)}`);
    return r.stdout;
  }

  private stopping?: Promise<void>;

  /** Kills everything in the cgroup; the namespaces, their mounts and the cgroups go with it. */
  stop(): Promise<void> {
    this.stopping ??= this.holder.stop(30_000);
    return this.stopping;
  }

  /** On process exit (synchronous): ask the holder to clean up; it outlives this process. */
  terminateNow(): void {
    try {
      process.kill(this.holder.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
}

/**
 * The network joining the clusters' namespaces: a bridge in a namespace of its own, one veth per
 * cluster (both ends always inside harness namespaces), routes to every other cluster's pods.
 */
export class Fabric {
  private constructor(readonly ns: Namespaces) {}

  static async create(dir: string, cgroup: string, ownerDir: string): Promise<Fabric> {
    const ns = await Namespaces.create({ name: 'fabric', dir, cgroup, hostname: 'fabric', ownerDir, setup: ['ip link add fabric type bridge', 'ip link set fabric up'] });
    return new Fabric(ns);
  }

  /** Connects cluster `i` (its namespaces `cluster`) and routes to the pods of the `count` clusters. */
  async connect(i: number, cluster: Namespaces, count: number): Promise<void> {
    const { nodeIp } = nodeAddresses(i);
    const port = `c${i}`;
    await this.ns.mustExec('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(cluster.pid)]);
    await this.ns.mustExec('ip', ['link', 'set', port, 'master', 'fabric', 'up']);
    await cluster.mustExec('ip', ['addr', 'add', `${nodeIp}/24`, 'dev', 'eth0']);
    await cluster.mustExec('ip', ['link', 'set', 'eth0', 'up']);
    for (let j = 1; j <= count; j++) {
      if (j !== i) await cluster.mustExec('ip', ['route', 'add', nodeAddresses(j).podCidr, 'via', nodeAddresses(j).nodeIp]);
    }
  }

  stop(): Promise<void> {
    return this.ns.stop();
  }
}

/** Files and settings of a node, written into its cluster directory. */
export interface NodeFiles {
  caFile: string;
  kubeletCert: string;
  kubeletKey: string;
  kubeconfig: string;
}

/**
 * containerd and a kubelet inside a cluster's namespaces, registered as `nodeName`; images
 * (the pause image first) imported into containerd before the kubelet starts.
 */
export class Node {
  private containerd?: ManagedProcess;
  private kubelet?: ManagedProcess;

  constructor(
    readonly nodeName: string,
    private readonly ns: Namespaces,
    private readonly bins: NodeBinaries,
    private readonly dir: string,
    private readonly index: number,
  ) {}

  private get socket(): string {
    return '/run/containerd/containerd.sock';
  }

  async startContainerd(): Promise<void> {
    const d = this.dir;
    const { podCidr } = nodeAddresses(this.index);
    mkdirSync(path.join(d, 'cni-conf'), { recursive: true });
    writeFileSync(path.join(d, 'cni-conf', '10-mcsa.conflist'), JSON.stringify({
      cniVersion: '1.0.0',
      name: 'mcsa',
      plugins: [{
        type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: podCidr }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(d, 'cni-ipam') },
      }],
    }));
    const q = (s: string) => JSON.stringify(s);
    writeFileSync(path.join(d, 'containerd.toml'), [
      'version = 3',
      `root = ${q(path.join(d, 'containerd-root'))}`,
      `state = "/run/containerd"`,
      '[grpc]',
      `  address = ${q(this.socket)}`,
      `[plugins.'io.containerd.internal.v1.opt']`,
      `  path = ${q(path.join(d, 'opt'))}`,
      `[plugins.'io.containerd.cri.v1.images']`,
      `  snapshotter = "overlayfs"`,
      `[plugins.'io.containerd.cri.v1.images'.pinned_images]`,
      `  sandbox = ${q(SANDBOX_IMAGE)}`,
      `[plugins.'io.containerd.cri.v1.runtime']`,
      '  enable_selinux = false',
      '  restrict_oom_score_adj = true',
      `[plugins.'io.containerd.cri.v1.runtime'.containerd]`,
      `  default_runtime_name = "runc"`,
      `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]`,
      `  runtime_type = "io.containerd.runc.v2"`,
      `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]`,
      '  SystemdCgroup = false',
      `  BinaryName = ${q(this.bins.runc)}`,
      `[plugins.'io.containerd.cri.v1.runtime'.cni]`,
      `  bin_dirs = [${q(this.bins.cniDir)}]`,
      `  conf_dir = ${q(path.join(d, 'cni-conf'))}`,
      '',
    ].join('\n'));
    this.containerd = this.ns.start('containerd', this.bins.containerd, ['--config', path.join(d, 'containerd.toml'), '--log-level', 'warn'],
      path.join(d, 'containerd.log'), { PATH: `${this.bins.dir}:${process.env.PATH ?? '/usr/bin:/bin'}` });
    await waitFor(`${this.nodeName} containerd`, async () => {
      if (!this.containerd!.running) throw new Error(`containerd exited: ${readFileSync(path.join(d, 'containerd.log'), 'utf8').slice(-1500)}`);
      return (await this.ns.exec(this.bins.ctr, ['-a', this.socket, 'version'], 5000)).code === 0;
    }, 60_000, 100);
  }

  /** Imports image archives into the kubelet's containerd namespace. */
  async importImages(files: string[]): Promise<void> {
    for (const f of files) {
      await this.ns.mustExec(this.bins.ctr, ['-a', this.socket, '-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', f], 180_000);
    }
  }

  async startKubelet(files: NodeFiles, cgroupRoot: string): Promise<void> {
    const d = this.dir;
    const config = {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      cgroupRoot,
      oomScoreAdj: 0,
      failSwapOn: false,
      readOnlyPort: 0,
      containerRuntimeEndpoint: `unix://${this.socket}`,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: files.caFile } },
      authorization: { mode: 'Webhook' },
      tlsCertFile: files.kubeletCert,
      tlsPrivateKeyFile: files.kubeletKey,
      syncFrequency: '10s',
      // Small test disks: no eviction, no image garbage collection.
      evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      resolvConf: '',
      registerNode: true,
      serializeImagePulls: false,
    };
    writeFileSync(path.join(d, 'kubelet.yaml'), stringify(config));
    this.kubelet = this.ns.start('kubelet', this.bins.kubelet, [
      `--config=${path.join(d, 'kubelet.yaml')}`,
      `--kubeconfig=${files.kubeconfig}`,
      `--hostname-override=${this.nodeName}`,
      `--node-ip=${nodeAddresses(this.index).nodeIp}`,
      '--v=1',
    ], path.join(d, 'kubelet.log'), { GOMEMLIMIT: '256MiB' });
  }

  assertRunning(): void {
    for (const [p, log] of [[this.containerd, 'containerd.log'], [this.kubelet, 'kubelet.log']] as const) {
      if (p && !p.running) throw new Error(`${p.name} exited: ${readFileSync(path.join(this.dir, log), 'utf8').slice(-1500)}`);
    }
  }

  get pids(): number[] {
    return [this.containerd, this.kubelet].filter((p) => p?.running).map((p) => p!.pid);
  }

  async stop(): Promise<void> {
    await this.kubelet?.stop(5_000);
    await this.containerd?.stop(5_000);
  }
}
