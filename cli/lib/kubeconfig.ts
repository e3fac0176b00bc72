// Loading one cluster's KubeConfig the way kubectl picks it: --kubeconfig alone, else KUBECONFIG
// (existing files merged), else ~/.kube/config, else in-cluster. Every cluster the CLI talks to
// gets its own KubeConfig instance (client-node caches credentials by user name: #592).
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { CliError, UsageError } from '../../src/bootstrap/errors.js';
import { describeError } from '../../src/bootstrap/describe.js';
import type { ClusterSelector } from '../../src/bootstrap/options.js';

export interface LoadedCluster {
  kc: KubeConfig;
  /** The selected context (`in-cluster` for the pod's own config). */
  contextName: string;
  /** The kubeconfig cluster the context points at: the default cluster name. */
  clusterName: string;
  server: string;
  /** PEM CA of the API server, when the kubeconfig has one. */
  caPem?: string;
  skipTLSVerify: boolean;
  /** The context's namespace, else `default`. */
  namespace: string;
  /** Where the config came from, for messages. */
  origin: string;
}

function loadFile(kc: KubeConfig, file: string, flag: string): void {
  try {
    kc.loadFromFile(file);
  } catch (e) {
    throw new UsageError(`cannot read kubeconfig ${file} (${flag}): ${describeError(e)}`);
  }
}

function loadConfig(file: string | undefined, flag: string): { kc: KubeConfig; origin: string } {
  const kc = new KubeConfig();
  if (file !== undefined) {
    if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`kubeconfig file ${file} given with ${flag} does not exist`);
    loadFile(kc, file, flag);
    return { kc, origin: file };
  }
  const env = process.env.KUBECONFIG;
  if (env !== undefined && env !== '') {
    const files = env.split(path.delimiter).filter((f) => f !== '' && existsSync(f));
    if (files.length === 0) throw new UsageError(`none of the kubeconfig files in KUBECONFIG (${env}) exists; pass ${flag}`);
    loadFile(kc, files[0]!, 'KUBECONFIG');
    for (const f of files.slice(1)) {
      const more = new KubeConfig();
      loadFile(more, f, 'KUBECONFIG');
      kc.mergeConfig(more);
    }
    return { kc, origin: files.join(path.delimiter) };
  }
  const home = path.join(os.homedir(), '.kube', 'config');
  if (existsSync(home)) {
    loadFile(kc, home, 'default kubeconfig');
    return { kc, origin: home };
  }
  if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
    return { kc, origin: 'in-cluster configuration' };
  }
  throw new UsageError(`no kubeconfig found: pass ${flag} or set KUBECONFIG`);
}

function readCa(caData: string | undefined, caFile: string | undefined, where: string): string | undefined {
  if (caData) return Buffer.from(caData, 'base64').toString('utf8');
  if (caFile) {
    try {
      return readFileSync(caFile, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read certificate-authority file ${caFile} of ${where}: ${describeError(e)}`);
    }
  }
  return undefined;
}

/**
 * The KubeConfig for one cluster, its current context set to `sel.context` (or the file's
 * current context). `flagPrefix` is `--target-`, `--source-` or `--`, for messages.
 */
export function loadCluster(sel: ClusterSelector, flagPrefix: string): LoadedCluster {
  const kubeconfigFlag = `${flagPrefix}kubeconfig`;
  const contextFlag = `${flagPrefix}context`;
  const { kc, origin } = loadConfig(sel.kubeconfig, kubeconfigFlag);
  const contextName = sel.context ?? kc.getCurrentContext();
  if (!contextName) throw new UsageError(`kubeconfig ${origin} has no current context; pass ${contextFlag}`);
  const context = kc.getContextObject(contextName);
  if (context === null) {
    const known = kc.getContexts().map((c) => c.name);
    throw new UsageError(
      `context ${JSON.stringify(contextName)} (${contextFlag}) not found in kubeconfig ${origin}` +
        (known.length > 0 ? ` (contexts: ${known.join(', ')})` : ''),
    );
  }
  kc.setCurrentContext(contextName);
  const cluster = kc.getCluster(context.cluster);
  if (cluster === null) throw new UsageError(`context ${JSON.stringify(contextName)} refers to cluster ${JSON.stringify(context.cluster)}, which is not in kubeconfig ${origin}`);
  const where = `cluster ${JSON.stringify(cluster.name)} in kubeconfig ${origin}`;
  const caPem = readCa(cluster.caData, cluster.caFile, where);
  return {
    kc,
    contextName,
    clusterName: cluster.name,
    server: cluster.server,
    ...(caPem !== undefined ? { caPem } : {}),
    skipTLSVerify: cluster.skipTLSVerify,
    namespace: context.namespace || 'default',
    origin,
  };
}
