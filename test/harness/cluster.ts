import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { createCa, issueCertificate } from '../../src/tls/pki.js';
import type { Binaries } from './binaries.js';
import { GiveUp, httpsGet, waitFor } from './https.js';
import { Node, nodeAddresses, type Namespaces, type NodeBinaries } from './node.js';
import { freePort } from './ports.js';
import { ManagedProcess } from './process.js';

/** What a test needs to reach one cluster; serialisable. */
export interface ClusterInfo {
  name: string;
  server: string;
  caPem: string;
  admin: { certPem: string; keyPem: string };
  dir: string;
  /** A kubeconfig holding only this cluster, as context `<name>`. */
  kubeconfigPath: string;
  /** With a node: the API server URL for pods of any cluster of the set (server is the host's, through a relay). */
  podServer?: string;
  /** With a node: its name. */
  nodeName?: string;
  /**
   * The kube-apiserver's `--authentication-config` file (structured authentication,
   * `apiserver.config.k8s.io/v1`), at first with no JWT authenticator. A test may replace it
   * (atomically: write a temporary file, rename it over this one); the API server notices the
   * change through a file watch (and a 1-minute poll), validates it, waits until the new JWT
   * authenticators pass their health check (discovery fetched; polled every 10 s) and swaps them
   * in (k8s.io/kubernetes pkg/kubeapiserver/options/authentication.go). An invalid file is logged
   * and ignored. Restore it with {@link resetAuthenticationConfig}.
   */
  authenticationConfigPath: string;
}

/** The document every harness cluster starts with: structured authentication, no JWT authenticator. */
export const EMPTY_AUTHENTICATION_CONFIG = { apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AuthenticationConfiguration', jwt: [] };

/** Writes `text` to `file` by rename, so the API server watching it never reads half a document. */
export function replaceFileAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Puts back the cluster's initial authentication configuration (no JWT authenticator). */
export function resetAuthenticationConfig(info: ClusterInfo): void {
  replaceFileAtomically(info.authenticationConfigPath, stringify(EMPTY_AUTHENTICATION_CONFIG));
}

/** A real node for a cluster: the namespaces it lives in (the whole cluster then runs there). */
export interface NodeOptions {
  ns: Namespaces;
  /** 1-based position in the set: fixes the node's addresses (node.ts nodeAddresses). */
  index: number;
  bins: NodeBinaries;
  /** Image archives to load into the node's containerd (the pause image first). */
  images: string[];
}

/** Controllers a node needs besides KCM_CONTROLLERS: Ready nodes, Endpoints for webhook Services, kube-root-ca.crt, PDBs. */
export const NODE_KCM_CONTROLLERS = [
  'node-lifecycle-controller',
  'endpoints-controller',
  'endpointslice-controller',
  'root-ca-certificate-publisher-controller',
  'disruption-controller',
  'taint-eviction-controller',
];
const API_PORT_IN_NS = 443;

export const KCM_CONTROLLERS = [
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'job-controller',
  'replicaset-controller',
  'deployment-controller',
];

const START_TIMEOUT_MS = Number(process.env.MCSA_CLUSTER_START_TIMEOUT_MS ?? 120_000);

/** A kubeconfig object with one context per cluster (context, cluster and user named after it). */
export function kubeconfigFor(clusters: ClusterInfo[], current = clusters[0]?.name): Record<string, unknown> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: clusters.map((c) => ({
      name: c.name,
      cluster: { server: c.server, 'certificate-authority-data': b64(c.caPem) },
    })),
    users: clusters.map((c) => ({
      name: `${c.name}-admin`,
      user: { 'client-certificate-data': b64(c.admin.certPem), 'client-key-data': b64(c.admin.keyPem) },
    })),
    contexts: clusters.map((c) => ({
      name: c.name,
      context: { cluster: c.name, user: `${c.name}-admin`, namespace: 'default' },
    })),
    'current-context': current,
    preferences: {},
  };
}

/**
 * One real Kubernetes control plane on loopback: etcd, kube-apiserver and (optionally)
 * kube-controller-manager, each a child process logging to a file in `dir`.
 */
export class Cluster {
  private etcd?: ManagedProcess;
  private apiserver?: ManagedProcess;
  private kcm?: ManagedProcess;
  private scheduler?: ManagedProcess;
  private relay?: ManagedProcess;
  private kubelet?: Node;
  private apiserverArgs: string[] = [];
  /** ServiceAccount key files the API server publishes and verifies with; the last one signs. */
  private saKeys: string[] = [];
  info!: ClusterInfo;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly bins: Binaries,
    private readonly node?: NodeOptions,
  ) {}

  static async start(opts: { name: string; dir: string; bins: Binaries; controllerManager?: boolean; log?: (m: string) => void; node?: NodeOptions }): Promise<Cluster> {
    const c = new Cluster(opts.name, opts.dir, opts.bins, opts.node);
    try {
      await c.boot(opts.controllerManager ?? true, opts.log ?? (() => {}));
    } catch (e) {
      await c.stop();
      throw new Error(`cluster ${opts.name} failed to start: ${(e as Error).message} (logs in ${opts.dir})`);
    }
    return c;
  }

  /** Process group IDs of every process still running (for emergency kills). */
  get pids(): number[] {
    return [this.etcd, this.apiserver, this.kcm, this.scheduler, this.relay].filter((p) => p?.running).map((p) => p!.pid).concat(this.kubelet?.pids ?? []);
  }

  /** On process exit: asks the node's namespace holder to kill everything of this cluster. */
  terminateNamespaces(): void {
    this.node?.ns.terminateNow();
  }

  /** A process of this cluster: on the host, or inside the node's namespaces and cgroup. */
  private spawn(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv = {}): ManagedProcess {
    const log = path.join(this.dir, `${name}.log`);
    return this.node ? this.node.ns.start(name, bin, args, log, env) : new ManagedProcess(`${this.name}/${name}`, bin, args, log, env);
  }

  private async boot(withKcm: boolean, log: (m: string) => void): Promise<void> {
    const t0 = Date.now();
    const dir = this.dir;
    mkdirSync(path.join(dir, 'etcd-data'), { recursive: true });
    const node = this.node;
    const addrs = node ? nodeAddresses(node.index) : undefined;
    // In a node's network namespace the ports are its own; on the host they are free loopback ports.
    const [etcdClient, etcdPeer, apiPort] = node ? [2379, 2380, API_PORT_IN_NS] : [await freePort(), await freePort(), await freePort()];
    const hostPort = node ? await freePort() : apiPort;
    const server = `https://127.0.0.1:${hostPort}`;
    const podServer = addrs ? `https://${addrs.nodeIp}:${API_PORT_IN_NS}` : undefined;

    const ca = await createCa(`${this.name}-ca`);
    const serving = await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: addrs ? ['127.0.0.1', addrs.nodeIp, addrs.kubernetesServiceIp] : ['127.0.0.1', '10.0.0.1'],
      usage: 'server',
    });
    const admin = await issueCertificate(ca, { commonName: 'admin', organizations: ['system:masters'], usage: 'client' });
    const saKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
    const files = {
      ca: this.write('ca.crt', ca.certPem),
      servingCert: this.write('apiserver.crt', serving.certPem),
      servingKey: this.write('apiserver.key', serving.keyPem),
      saKey: this.write('sa.key', saKey),
    };
    this.saKeys = [files.saKey];
    this.info = {
      name: this.name,
      server,
      caPem: ca.certPem,
      admin,
      dir,
      kubeconfigPath: path.join(dir, 'admin.kubeconfig'),
      authenticationConfigPath: this.write('authentication-config.yaml', stringify(EMPTY_AUTHENTICATION_CONFIG)),
      ...(node ? { podServer, nodeName: `${this.name}-node` } : {}),
    };
    writeFileSync(this.info.kubeconfigPath, stringify(kubeconfigFor([this.info])), { mode: 0o600 });
    // The controllers inside the namespaces reach the API server on their own loopback.
    const inNsKubeconfig = node ? path.join(dir, 'admin-in-node.kubeconfig') : this.info.kubeconfigPath;
    if (node) writeFileSync(inNsKubeconfig, stringify(kubeconfigFor([{ ...this.info, server: `https://127.0.0.1:${API_PORT_IN_NS}` }])), { mode: 0o600 });

    this.etcd = this.spawn('etcd', this.bins.etcd, [
      `--name=${this.name}`,
      `--data-dir=${path.join(dir, 'etcd-data')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=${this.name}=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ], { GOMEMLIMIT: '512MiB' });
    if (node) {
      // etcd is inside the namespace: the API server's readiness covers it. The host reaches the API server through a relay.
      this.relay = new ManagedProcess(`${this.name}/relay`, node.bins.relay, ['-listen', `127.0.0.1:${hostPort}`, '-netns', node.ns.netns, '-connect', `127.0.0.1:${API_PORT_IN_NS}`], path.join(dir, 'relay.log'));
    } else {
      await waitFor(`${this.name} etcd /health`, async () => {
        this.assertRunning(this.etcd!);
        const r = await fetch(`http://127.0.0.1:${etcdClient}/health`);
        return r.status === 200;
      }, START_TIMEOUT_MS);
      log(`${this.name}: etcd ready (${Date.now() - t0} ms)`);
    }

    this.apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--bind-address=${node ? '0.0.0.0' : '127.0.0.1'}`,
      `--advertise-address=${addrs?.nodeIp ?? '127.0.0.1'}`,
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${files.servingCert}`,
      `--tls-private-key-file=${files.servingKey}`,
      `--client-ca-file=${files.ca}`,
      `--service-account-issuer=${podServer ?? server}`,
      `--service-account-key-file=${files.saKey}`,
      `--service-account-signing-key-file=${files.saKey}`,
      `--authentication-config=${this.info.authenticationConfigPath}`,
      '--allow-privileged=true',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
    ];
    if (node) {
      const kubeletClient = await issueCertificate(ca, { commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usage: 'client' });
      this.apiserverArgs.push(
        '--authorization-mode=Node,RBAC',
        `--service-cluster-ip-range=${addrs!.serviceCidr}`,
        // Pods get projected tokens (ServiceAccount admission); kubelets are limited to their node.
        '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook,NodeRestriction',
        // No kube-proxy: the API server calls webhook Services at their endpoints (pod addresses).
        '--enable-aggregator-routing=true',
        '--kubelet-preferred-address-types=InternalIP',
        `--kubelet-client-certificate=${this.write('apiserver-kubelet-client.crt', kubeletClient.certPem)}`,
        `--kubelet-client-key=${this.write('apiserver-kubelet-client.key', kubeletClient.keyPem)}`,
        `--kubelet-certificate-authority=${files.ca}`,
      );
    } else {
      this.apiserverArgs.push(
        '--authorization-mode=RBAC',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
        '--disable-admission-plugins=ServiceAccount',
      );
    }
    await this.startApiServer();
    log(`${this.name}: kube-apiserver ready (${Date.now() - t0} ms)`);

    if (withKcm) {
      this.kcm = this.spawn('kube-controller-manager', this.bins.kubeControllerManager, [
        `--kubeconfig=${inNsKubeconfig}`,
        `--controllers=${[...KCM_CONTROLLERS, ...(node ? NODE_KCM_CONTROLLERS : [])].join(',')}`,
        `--service-account-private-key-file=${files.saKey}`,
        `--root-ca-file=${files.ca}`,
        '--leader-elect=false',
        '--secure-port=0',
        '--use-service-account-credentials=false',
      ], { GOMEMLIMIT: '512MiB' });
      await waitFor(`${this.name} kube-controller-manager to create ServiceAccount default/default`, async () => {
        this.assertRunning(this.kcm!);
        return (await this.get('/api/v1/namespaces/default/serviceaccounts/default')).status === 200;
      }, START_TIMEOUT_MS, 250);
      log(`${this.name}: kube-controller-manager ready (${Date.now() - t0} ms)`);
    }
    if (node) await this.bootNode(node, ca, inNsKubeconfig, files.ca, log, t0);
  }

  /** kube-scheduler, containerd (images loaded) and a kubelet registered as `<cluster>-node`, until the node is Ready and untainted. */
  private async bootNode(node: NodeOptions, ca: Awaited<ReturnType<typeof createCa>>, inNsKubeconfig: string, caFile: string, log: (m: string) => void, t0: number): Promise<void> {
    const nodeName = this.info.nodeName!;
    const { nodeIp } = nodeAddresses(node.index);
    this.scheduler = this.spawn('kube-scheduler', node.bins.kubeScheduler, [
      `--kubeconfig=${inNsKubeconfig}`,
      `--authentication-kubeconfig=${inNsKubeconfig}`,
      `--authorization-kubeconfig=${inNsKubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
    ], { GOMEMLIMIT: '256MiB' });
    const nodeDir = path.join(this.dir, 'node');
    mkdirSync(nodeDir, { recursive: true });
    this.kubelet = new Node(nodeName, node.ns, node.bins, nodeDir, node.index);
    await this.kubelet.startContainerd();
    await this.kubelet.importImages(node.images);
    log(`${this.name}: containerd ready, ${node.images.length} images loaded (${Date.now() - t0} ms)`);
    const client = await issueCertificate(ca, { commonName: `system:node:${nodeName}`, organizations: ['system:nodes'], usage: 'client' });
    const serving = await issueCertificate(ca, { commonName: nodeName, dnsNames: [nodeName], ipAddresses: [nodeIp], usage: 'server' });
    const kubeconfig = path.join(nodeDir, 'kubelet.kubeconfig');
    writeFileSync(kubeconfig, stringify(kubeconfigFor([{ ...this.info, server: `https://127.0.0.1:${API_PORT_IN_NS}`, admin: client }])), { mode: 0o600 });
    await this.kubelet.startKubelet({
      caFile,
      kubeletCert: this.write('node/kubelet.crt', serving.certPem),
      kubeletKey: this.write('node/kubelet.key', serving.keyPem),
      kubeconfig,
    }, `/${node.ns.cgroup}`);
    await waitFor(`${this.name}: node ${nodeName} Ready and untainted`, async () => {
      this.kubelet!.assertRunning();
      const r = await this.get(`/api/v1/nodes/${nodeName}`);
      if (r.status !== 200) return false;
      const n = JSON.parse(r.body) as { spec?: { taints?: { key: string }[] }; status?: { conditions?: { type: string; status: string }[] } };
      return (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True') && (n.spec?.taints ?? []).length === 0;
    }, START_TIMEOUT_MS, 250);
    log(`${this.name}: node ${nodeName} Ready (${Date.now() - t0} ms)`);
  }

  /** Starts (or restarts, on the same port and data) the kube-apiserver and waits until it serves. */
  async startApiServer(): Promise<void> {
    if (this.apiserver?.running) return;
    this.apiserver = this.spawn('kube-apiserver', this.bins.kubeApiserver, this.apiserverArgs, { GOMEMLIMIT: '1GiB' });
    await waitFor(`${this.name} kube-apiserver /readyz`, async () => {
      this.assertRunning(this.apiserver!);
      return (await httpsGet(`${this.info.server}/readyz`, { caPem: this.info.caPem }, 2000)).status === 200;
    }, START_TIMEOUT_MS);
    for (const ns of ['default', 'kube-system']) {
      await waitFor(`${this.name} namespace ${ns}`, async () => (await this.get(`/api/v1/namespaces/${ns}`)).status === 200, START_TIMEOUT_MS);
    }
  }

  /**
   * Rotates the ServiceAccount signing key as an operator does: a new key signs, the previous ones
   * stay published (their tokens still verify); restarts the API server. With `retire`, instead,
   * only the current signing key stays published. The controller manager, if any, keeps the
   * key it started with.
   */
  async rotateServiceAccountKey(opts: { retire?: boolean } = {}): Promise<void> {
    if (opts.retire) this.saKeys = this.saKeys.slice(-1);
    else {
      const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
      this.saKeys = [...this.saKeys, this.write(`sa-${this.saKeys.length + 1}.key`, key)];
    }
    this.apiserverArgs = [
      ...this.apiserverArgs.filter((a) => !a.startsWith('--service-account-key-file=') && !a.startsWith('--service-account-signing-key-file=')),
      ...this.saKeys.map((f) => `--service-account-key-file=${f}`),
      `--service-account-signing-key-file=${this.saKeys.at(-1)!}`,
    ];
    await this.stopApiServer();
    await this.startApiServer();
  }

  /** Stops only the kube-apiserver (an outage as clients see it); etcd keeps the data. */
  async stopApiServer(): Promise<void> {
    await this.apiserver?.stop();
  }

  async stop(): Promise<void> {
    // With a node, the namespace holder kills everything in the cluster's cgroup at once (containers, shims, kubelet, control plane).
    if (this.node) await this.node.ns.stop();
    await this.kubelet?.stop();
    await this.scheduler?.stop();
    await this.relay?.stop();
    await this.kcm?.stop();
    await this.apiserver?.stop();
    await this.etcd?.stop();
  }

  /** GET with the admin credential. */
  get(p: string): Promise<{ status: number; body: string }> {
    return httpsGet(`${this.info.server}${p}`, { caPem: this.info.caPem, ...this.info.admin });
  }

  private write(file: string, content: string): string {
    const p = path.join(this.dir, file);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  }

  private assertRunning(p: ManagedProcess): void {
    if (!p.running) throw new GiveUp(`${p.name} exited early; last log lines:\n${logTail(p.logFile)}`);
  }
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  | ${l}`).join('\n');
  } catch {
    return `  (no log at ${file})`;
  }
}
