// The controller process: `node streams/controller/main.js [flags]` (see docs/reference/controller.md).
import '../../src/node-version.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { DEFAULT_REFRESH_RATIO } from '../../src/controller/decide.js';
import { durationArg } from '../flags.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { packageVersion } from '../../src/version.js';
import { startLeaderElection, type LeaderElector } from '../leader.js';
import { Controller } from './controller.js';
import { ControllerMetrics } from './metrics.js';
import type { RemoteClusterSpec } from './remote-cluster.js';
import { loaderEnvironment } from '../../src/config/environment.js';
import { kubeConfigForContext } from '../../src/config/kubeconfig.js';
import { loadKubeconfigContext, loadKubeconfigFiles } from '../../src/config/loaders.js';

interface Flags {
  kubeconfig?: string;
  context?: string;
  installNamespace: string;
  concurrency: number;
  clusterConcurrency?: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionId: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  refreshRatio: number;
  maxRefreshInterval?: number;
  resyncPeriod: number;
  shutdownTimeout: number;
  logLevel: string;
}

const duration = durationArg;
const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a whole number of at least 1 (got "${v}")`);
  return n;
};
const ratio = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`must be a number between 0 and 1 (got "${v}")`);
  return n;
};

function controllerCommand(): Command {
  return new Command('multicluster-service-account-controller')
    .description('Mints short-lived tokens for ServiceAccountImports and keeps them, refreshed, in Secrets.')
    .version(packageVersion(), '--version', 'print the version')
    .option('--kubeconfig <path>', 'kubeconfig of the local (target) cluster; its contexts also become source clusters (development). Default: $KUBECONFIG, else ~/.kube/config, else in-cluster')
    .option('--context <name>', 'context of --kubeconfig to use for the local cluster')
    .addOption(new Option('--install-namespace <ns>', 'namespace of registrations, the Lease and this controller').default(process.env.POD_NAMESPACE || INSTALL_NAMESPACE))
    .option('--concurrency <n>', 'maximum reconciles at once', positiveInt, 10)
    .option('--cluster-concurrency <n>', "maximum reconciles of one source cluster's imports at once (default: --concurrency)", positiveInt)
    .option('--metrics-bind-address <addr>', 'address of the Prometheus /metrics endpoint ("0" disables)', ':8080')
    .option('--health-probe-bind-address <addr>', 'address of /healthz and /readyz ("0" disables)', ':8081')
    .option('--no-leader-elect', 'run without leader election (only one replica may run)')
    .option('--leader-election-id <name>', 'name of the Lease in the install namespace', 'multicluster-service-account-controller')
    .addOption(new Option('--lease-duration <d>', 'how long a Lease is valid without renewal').argParser(duration('--lease-duration')).default(15_000, '15s'))
    .addOption(new Option('--renew-deadline <d>', 'a leader that cannot renew for this long steps down').argParser(duration('--renew-deadline')).default(10_000, '10s'))
    .addOption(new Option('--retry-period <d>', 'time between leader election attempts').argParser(duration('--retry-period')).default(2_000, '2s'))
    .option('--refresh-ratio <r>', 'refresh tokens at this fraction of their granted lifetime (±0.05 jitter)', ratio, DEFAULT_REFRESH_RATIO)
    .option('--max-refresh-interval <d>', 'refresh tokens at least this often, whatever their lifetime', duration('--max-refresh-interval'))
    .addOption(new Option('--resync-period <d>', 'reconcile every import at least this often (queued 100 a second)').argParser(duration('--resync-period')).default(600_000, '10m'))
    .addOption(new Option('--shutdown-timeout <d>', 'how long SIGTERM waits for in-flight reconciles').argParser(duration('--shutdown-timeout')).default(10_000, '10s'))
    .option('--log-level <level>', 'error, warn, info or debug', process.env.LOG_LEVEL ?? 'info');
}

/**
 * The local cluster's config, by the library's loader (the one of every binary): `--kubeconfig`
 * alone, else `$KUBECONFIG`'s files merged, else `~/.kube/config`, else in-cluster; `--context`
 * or the current context.
 */
async function loadLocal(flags: Flags): Promise<KubeConfig> {
  return (await loadKubeconfigContext(loaderEnvironment(), flags.kubeconfig ?? '', flags.context ?? '')).value.kubeConfig;
}

/** `--kubeconfig` contexts as source clusters (development), each with its own KubeConfig. */
async function staticClusters(flags: Flags, log: Logger): Promise<RemoteClusterSpec[]> {
  if (!flags.kubeconfig) return [];
  const loaded = await loadKubeconfigFiles(loaderEnvironment(), flags.kubeconfig);
  if (!loaded) return [];
  const specs: RemoteClusterSpec[] = [];
  for (const ctx of loaded.model.contexts) {
    const cluster = loaded.model.clusters.find((c) => c.name === ctx.cluster);
    const caPem = cluster?.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : cluster?.caFile ? readFileSync(cluster.caFile, 'utf8') : undefined;
    if (!cluster || !caPem) {
      log.warn('kubeconfig context skipped as a source cluster: no cluster CA', { context: ctx.name });
      continue;
    }
    const { kubeConfig } = await kubeConfigForContext(loaded.model, ctx.name);
    specs.push({ name: ctx.name, server: cluster.server, caPem, auth: { kind: 'kubeconfig', kubeConfig }, source: 'kubeconfig' });
  }
  return specs;
}

function listen(address: string, handler: http.RequestListener, what: string, log: Logger): http.Server | undefined {
  if (address === '0' || address === '') return undefined;
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i) || '0.0.0.0';
  const port = Number(address.slice(i + 1));
  const server = http.createServer(handler);
  server.on('error', (e) => {
    log.error(`cannot serve ${what}`, { address, error: e });
    process.exit(1);
  });
  server.listen(port, host, () => log.info(`serving ${what}`, { address: `${host}:${(server.address() as { port: number }).port}` }));
  return server;
}

async function main(argv = process.argv): Promise<void> {
  const cmd = controllerCommand();
  cmd.parse(argv);
  const flags = cmd.opts<Flags>();
  const log = createLogger({ component: 'controller', level: flags.logLevel });
  const local = await loadLocal(flags);
  const metrics = new ControllerMetrics();
  metrics.buildInfo.set({ component: 'controller', version: packageVersion() }, 1);
  const controller = new Controller({
    local,
    installNamespace: flags.installNamespace,
    concurrency: flags.concurrency,
    clusterConcurrency: flags.clusterConcurrency ?? flags.concurrency,
    refreshRatio: flags.refreshRatio,
    maxRefreshIntervalMs: flags.maxRefreshInterval,
    resyncPeriodMs: flags.resyncPeriod,
    staticClusters: await staticClusters(flags, log),
    logger: log,
    metrics,
  });
  let shuttingDown = false;
  const probes = listen(flags.healthProbeBindAddress, (req, res) => {
    const ok = req.url === '/healthz' ? !shuttingDown : req.url === '/readyz' ? controller.synced && !shuttingDown : undefined;
    res.statusCode = ok === undefined ? 404 : ok ? 200 : 503;
    res.end(ok === undefined ? 'not found\n' : ok ? 'ok\n' : 'not ready\n');
  }, 'health probes', log);
  const metricsServer = listen(flags.metricsBindAddress, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://metrics');
    if (url.pathname !== '/metrics') {
      res.statusCode = 404;
      res.end('not found\n');
      return;
    }
    const names = url.searchParams.getAll('name[]');
    if (names.length === 0 || names.includes('mcsa_watch_connections')) metrics.watchConnections.set(controller.watchCount);
    if (names.length === 0 || names.includes('mcsa_imports')) metrics.countImports(controller.imports.list());
    if (names.length === 0 || names.includes('mcsa_token_seconds_to_expiry') || names.includes('mcsa_token_lifetime_seconds')) metrics.setTokenExpiries(controller.secrets.list(), new Date());
    metrics.render(names).then(
      (text) => {
        res.setHeader('Content-Type', metrics.registry.contentType);
        res.end(text);
      },
      (e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      },
    );
  }, 'metrics', log);

  controller.start();
  log.info('controller started', { version: packageVersion(), node: process.version, installNamespace: flags.installNamespace, concurrency: flags.concurrency, leaderElect: flags.leaderElect });

  let elector: LeaderElector | undefined;
  if (flags.leaderElect) {
    elector = startLeaderElection({
      kubeConfig: local,
      namespace: flags.installNamespace,
      name: flags.leaderElectionId,
      leaseDurationMs: flags.leaseDuration,
      renewDeadlineMs: flags.renewDeadline,
      retryPeriodMs: flags.retryPeriod,
      logger: log,
    });
    let led = false;
    elector.isLeader$.subscribe((leader) => {
      metrics.isLeader.set({ name: flags.leaderElectionId }, leader ? 1 : 0);
      if (leader && !led) {
        led = true;
        log.info('became leader; reconciling', { identity: elector!.identity });
        controller.startReconciling();
      } else if (!leader && led && !shuttingDown) {
        // Another replica may already be writing: stop at once, as controller-runtime does.
        log.error('lost leadership; exiting', { identity: elector!.identity });
        process.exit(1);
      }
    });
  } else {
    controller.startReconciling();
  }

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { signal });
    await controller.stop(flags.shutdownTimeout);
    await elector?.stop({ release: true });
    const servers = [probes, metricsServer].filter((s): s is http.Server => s !== undefined);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('streams/controller/main.ts') || process.argv[1]?.endsWith('streams/controller/main.js')) {
  main().catch((e: unknown) => {
    console.error(`multicluster-service-account-controller: ${(e as Error).message}`);
    process.exit(1);
  });
}
