import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { createCa, issueCertificate } from '../../src/tls/pki.js';
import type { Binaries } from './binaries.js';
import { GiveUp, httpsGet, waitFor } from './https.js';
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
}

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
  private apiserverArgs: string[] = [];
  info!: ClusterInfo;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly bins: Binaries,
  ) {}

  static async start(opts: { name: string; dir: string; bins: Binaries; controllerManager?: boolean; log?: (m: string) => void }): Promise<Cluster> {
    const c = new Cluster(opts.name, opts.dir, opts.bins);
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
    return [this.etcd, this.apiserver, this.kcm].filter((p) => p?.running).map((p) => p!.pid);
  }

  private async boot(withKcm: boolean, log: (m: string) => void): Promise<void> {
    const t0 = Date.now();
    const dir = this.dir;
    mkdirSync(path.join(dir, 'etcd-data'), { recursive: true });
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiPort}`;

    const ca = await createCa(`${this.name}-ca`);
    const serving = await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '10.0.0.1'],
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
    this.info = {
      name: this.name,
      server,
      caPem: ca.certPem,
      admin,
      dir,
      kubeconfigPath: path.join(dir, 'admin.kubeconfig'),
    };
    writeFileSync(this.info.kubeconfigPath, stringify(kubeconfigFor([this.info])), { mode: 0o600 });

    this.etcd = new ManagedProcess(`${this.name}/etcd`, this.bins.etcd, [
      `--name=${this.name}`,
      `--data-dir=${path.join(dir, 'etcd-data')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=${this.name}=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ], path.join(dir, 'etcd.log'), { GOMEMLIMIT: '512MiB' });
    await waitFor(`${this.name} etcd /health`, async () => {
      this.assertRunning(this.etcd!);
      const r = await fetch(`http://127.0.0.1:${etcdClient}/health`);
      return r.status === 200;
    }, START_TIMEOUT_MS);
    log(`${this.name}: etcd ready (${Date.now() - t0} ms)`);

    this.apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${files.servingCert}`,
      `--tls-private-key-file=${files.servingKey}`,
      `--client-ca-file=${files.ca}`,
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${files.saKey}`,
      `--service-account-signing-key-file=${files.saKey}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
      '--disable-admission-plugins=ServiceAccount',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
    ];
    await this.startApiServer();
    log(`${this.name}: kube-apiserver ready (${Date.now() - t0} ms)`);

    if (withKcm) {
      this.kcm = new ManagedProcess(`${this.name}/kube-controller-manager`, this.bins.kubeControllerManager, [
        `--kubeconfig=${this.info.kubeconfigPath}`,
        `--controllers=${KCM_CONTROLLERS.join(',')}`,
        `--service-account-private-key-file=${files.saKey}`,
        `--root-ca-file=${files.ca}`,
        '--leader-elect=false',
        '--secure-port=0',
        '--use-service-account-credentials=false',
      ], path.join(dir, 'kube-controller-manager.log'), { GOMEMLIMIT: '512MiB' });
      await waitFor(`${this.name} kube-controller-manager to create ServiceAccount default/default`, async () => {
        this.assertRunning(this.kcm!);
        return (await this.get('/api/v1/namespaces/default/serviceaccounts/default')).status === 200;
      }, START_TIMEOUT_MS, 250);
      log(`${this.name}: kube-controller-manager ready (${Date.now() - t0} ms)`);
    }
  }

  /** Starts (or restarts, on the same port and data) the kube-apiserver and waits until it serves. */
  async startApiServer(): Promise<void> {
    if (this.apiserver?.running) return;
    this.apiserver = new ManagedProcess(`${this.name}/kube-apiserver`, this.bins.kubeApiserver, this.apiserverArgs,
      path.join(this.dir, 'kube-apiserver.log'), { GOMEMLIMIT: '1GiB' });
    await waitFor(`${this.name} kube-apiserver /readyz`, async () => {
      this.assertRunning(this.apiserver!);
      return (await httpsGet(`${this.info.server}/readyz`, { caPem: this.info.caPem }, 2000)).status === 200;
    }, START_TIMEOUT_MS);
    for (const ns of ['default', 'kube-system']) {
      await waitFor(`${this.name} namespace ${ns}`, async () => (await this.get(`/api/v1/namespaces/${ns}`)).status === 200, START_TIMEOUT_MS);
    }
  }

  /** Stops only the kube-apiserver (an outage as clients see it); etcd keeps the data. */
  async stopApiServer(): Promise<void> {
    await this.apiserver?.stop();
  }

  async stop(): Promise<void> {
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
