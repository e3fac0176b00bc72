import '../../src/node-version.js';
import { isIP } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { loaderEnvironment } from '../../src/config/environment.js';
import { loadKubeconfigContext } from '../../src/config/loaders.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { createLogger } from '../../src/logger.js';
import { packageVersion } from '../../src/version.js';
import { serviceDnsNames } from '../../src/tls/serving.js';
import { createWebhookApp, DEFAULT_MAX_BODY_BYTES } from './app.js';
import { FileCertificates, SelfManagedCertificates, type CertificateSource } from './certs.js';
import { importFetcher, importWatchCache } from './import-source.js';
import { DEFAULT_LOOKUP_LIMITS, ImportCache } from './lookup.js';
import { MAX_IMPORTS_PER_POD } from '../../src/webhook/review.js';
import { WebhookMetrics } from './metrics.js';
import { AdmissionPipeline, DEFAULT_LOOKUPS_PER_REQUEST } from './pipeline.js';
import { parseAddress, WebhookServer } from './server.js';
import { startLeaderElection } from '../leader.js';
import { durationArg } from '../flags.js';

function parseAddressFlag(s: string) {
  try {
    return parseAddress(s);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parsePositiveInt(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

function parseList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

function webhookCommand(): Command {
  return new Command('multicluster-service-account-webhook')
    .description('Mutating admission webhook: mounts ServiceAccountImport Secrets into annotated pods.')
    .version(packageVersion(), '--version', 'print the version')
    .addOption(new Option('--listen-address <host:port>', 'HTTPS address for admission requests').default(':9443').argParser(parseAddressFlag))
    .addOption(new Option('--metrics-address <host:port>', 'plain-HTTP address for /metrics, /healthz and /readyz').default(':8080').argParser(parseAddressFlag))
    .option('--tls-cert-file <path>', 'serving certificate (PEM) from a file, e.g. cert-manager tls.crt; turns self-managed TLS off')
    .option('--tls-key-file <path>', 'private key (PEM) for --tls-cert-file, e.g. tls.key')
    .option('--tls-secret-name <name>', 'self-managed TLS: the Secret holding the CA and serving certificate', 'multicluster-service-account-webhook-tls')
    .option('--webhook-config-name <name>', 'self-managed TLS: the MutatingWebhookConfiguration that gets the CA bundle', 'multicluster-service-account-webhook')
    .option('--service-name <name>', 'the webhook Service (serving certificate DNS names)', 'multicluster-service-account-webhook')
    .option('--service-namespace <namespace>', 'the Service and TLS Secret namespace', process.env.POD_NAMESPACE || INSTALL_NAMESPACE)
    .addOption(new Option('--extra-sans <names>', 'extra DNS names or IP addresses in the serving certificate (comma-separated)').default([] as string[], '').argParser(parseList))
    .addOption(new Option('--ca-validity <duration>', 'self-managed TLS: CA lifetime (rotated in its last third)').default(5 * 365 * 86_400_000, '1825d').argParser(durationArg('--ca-validity')))
    .addOption(new Option('--cert-validity <duration>', 'self-managed TLS: serving certificate lifetime (renewed in its last third)').default(90 * 86_400_000, '90d').argParser(durationArg('--cert-validity')))
    .addOption(new Option('--ca-propagation-delay <duration>', 'self-managed TLS: time a new CA is published before certificates it signs are served').default(60_000, '60s').argParser(durationArg('--ca-propagation-delay')))
    .addOption(new Option('--cert-check-interval <duration>', 'how often the certificate Secret or files are checked').default(30_000, '30s').argParser(durationArg('--cert-check-interval')))
    .addOption(new Option('--admission-timeout <duration>', 'deadline for one admission (keep it below the configuration timeoutSeconds)').default(4000, '4s').argParser(durationArg('--admission-timeout')))
    .addOption(new Option('--max-concurrency <n>', 'admissions worked on at once').default(64).argParser(parsePositiveInt))
    .addOption(new Option('--max-body-bytes <n>', 'largest accepted request body (the API server sends at most 3 MiB requests)').default(DEFAULT_MAX_BODY_BYTES).argParser(parsePositiveInt))
    .addOption(new Option('--max-imports-per-pod <n>', 'imports one pod may name; more are denied').default(MAX_IMPORTS_PER_POD).argParser(parsePositiveInt))
    .addOption(new Option('--max-lookups <n>', 'API lookups of imports missing from the cache running at once, all admissions together').default(DEFAULT_LOOKUP_LIMITS.maxInFlight).argParser(parsePositiveInt))
    .addOption(new Option('--max-lookups-per-request <n>', 'API lookups one admission runs at once').default(DEFAULT_LOOKUPS_PER_REQUEST).argParser(parsePositiveInt))
    .addOption(new Option('--lookup-timeout <duration>', 'deadline of one API lookup, and of the wait for a free lookup slot').default(2000, '2s').argParser(durationArg('--lookup-timeout')))
    .addOption(new Option('--negative-cache-ttl <duration>', 'how long an import found missing by an API lookup is remembered as missing').default(DEFAULT_LOOKUP_LIMITS.negativeTtlMs, '5s').argParser(durationArg('--negative-cache-ttl')))
    .addOption(new Option('--shutdown-timeout <duration>', 'how long in-flight requests may take after SIGTERM').default(25_000, '25s').argParser(durationArg('--shutdown-timeout')))
    .option('--no-leader-elect', 'self-managed TLS: let every replica write the Secret and caBundle (writes stay conditional) instead of only the Lease holder')
    .option('--leader-election-lease <name>', 'self-managed TLS: the Lease (in --service-namespace) that picks the replica doing the writes', 'multicluster-service-account-webhook')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster, as kubectl)')
    .option('--context <name>', 'kubeconfig context')
    .option('--log-level <level>', 'error, warn, info or debug', process.env.LOG_LEVEL ?? 'info');
}

interface Flags {
  listenAddress: { host: string; port: number };
  metricsAddress: { host: string; port: number };
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsSecretName: string;
  webhookConfigName: string;
  serviceName: string;
  serviceNamespace: string;
  extraSans: string[];
  caValidity: number;
  certValidity: number;
  caPropagationDelay: number;
  certCheckInterval: number;
  admissionTimeout: number;
  maxConcurrency: number;
  maxBodyBytes: number;
  maxImportsPerPod: number;
  maxLookups: number;
  maxLookupsPerRequest: number;
  lookupTimeout: number;
  negativeCacheTtl: number;
  shutdownTimeout: number;
  leaderElect: boolean;
  leaderElectionLease: string;
  kubeconfig?: string;
  context?: string;
  logLevel: string;
}

/** By the library's loader, the one of every binary (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`, in-cluster). */
async function loadKubeConfig(f: Flags): Promise<KubeConfig> {
  return (await loadKubeconfigContext(loaderEnvironment(), f.kubeconfig ?? '', f.context ?? '')).value.kubeConfig;
}

async function main(argv: string[]): Promise<void> {
  const cmd = webhookCommand();
  cmd.parse(argv);
  const f = cmd.opts<Flags>();
  if (Boolean(f.tlsCertFile) !== Boolean(f.tlsKeyFile)) cmd.error('--tls-cert-file and --tls-key-file go together', { exitCode: 2 });
  const log = createLogger({ component: 'webhook', level: f.logLevel });
  const kc = await loadKubeConfig(f);
  const metrics = new WebhookMetrics();
  metrics.buildInfo.set({ component: 'webhook', version: packageVersion() }, 1);

  const watchCache = importWatchCache(kc, log).start();
  const cache = new ImportCache(watchCache, importFetcher(kc, f.lookupTimeout), metrics, {
    maxInFlight: f.maxLookups,
    slotWaitMs: f.lookupTimeout,
    negativeTtlMs: f.negativeCacheTtl,
  });
  const pipeline = new AdmissionPipeline({
    lookup: cache,
    log,
    concurrency: f.maxConcurrency,
    timeoutMs: f.admissionTimeout,
    maxImportsPerPod: f.maxImportsPerPod,
    lookupsPerRequest: f.maxLookupsPerRequest,
  });

  const selfManaged = !f.tlsCertFile;
  const elector = selfManaged && f.leaderElect
    ? startLeaderElection({ kubeConfig: kc, namespace: f.serviceNamespace, name: f.leaderElectionLease, logger: log })
    : undefined;
  const certificates: CertificateSource = !selfManaged
    ? new FileCertificates(f.tlsCertFile!, f.tlsKeyFile!, log, f.certCheckInterval)
    : new SelfManagedCertificates({
        kubeConfig: kc,
        namespace: f.serviceNamespace,
        secretName: f.tlsSecretName,
        webhookConfigName: f.webhookConfigName || undefined,
        checkIntervalMs: f.certCheckInterval,
        log,
        metrics,
        ...(elector ? { isLeader: () => elector.isLeader } : {}),
        policy: {
          caValidityMs: f.caValidity,
          certValidityMs: f.certValidity,
          propagationDelayMs: f.caPropagationDelay,
          dnsNames: [...serviceDnsNames(f.serviceName, f.serviceNamespace), ...f.extraSans.filter((s) => isIP(s) === 0)],
          ipAddresses: f.extraSans.filter((s) => isIP(s) !== 0),
        },
      });

  let server: WebhookServer | undefined = undefined;
  const app = createWebhookApp({ pipeline, metrics, log, maxBodyBytes: f.maxBodyBytes, draining: () => server?.isDraining ?? false });
  server = new WebhookServer({ app, listen: f.listenAddress, metricsListen: f.metricsAddress, certificates, metrics, log, ready: () => cache.synced });

  const stopping = new AbortController();
  let exiting = false;
  const shutdown = async (signal: string) => {
    if (exiting) return;
    exiting = true;
    stopping.abort();
    log.info('shutting down', { signal });
    await server.shutdown(f.shutdownTimeout);
    await pipeline.close();
    await elector?.stop();
    watchCache.stop();
    log.info('stopped');
    log.on('finish', () => process.exit(0));
    log.end();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  log.info('starting', {
    version: packageVersion(),
    node: process.version,
    tls: f.tlsCertFile ? 'files' : 'self-managed',
    service: `${f.serviceNamespace}/${f.serviceName}`,
    webhookConfiguration: f.tlsCertFile ? undefined : f.webhookConfigName,
  });
  await server.start(stopping.signal);
}

main(process.argv).catch((e: unknown) => {
  console.error(JSON.stringify({ level: 'error', message: 'webhook failed to start', error: (e as Error).message }));
  process.exit(1);
});
