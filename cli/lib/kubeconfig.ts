// One cluster's KubeConfig for the CLI, loaded by the library's loader (src/config), the one
// every binary uses: --kubeconfig alone, else $KUBECONFIG's files merged as kubectl merges them
// (first definition of a name wins; `tokenFile` users re-read their file), else ~/.kube/config,
// else in-cluster. Every cluster the CLI talks to gets its own KubeConfig instance (client-node
// caches credentials by user name: #592).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { CliError, UsageError } from '../../src/bootstrap/errors.js';
import { describeError } from '../../src/bootstrap/describe.js';
import type { ClusterSelector } from '../../src/bootstrap/options.js';
import { loaderEnvironment, type LoaderEnvironment } from '../../src/config/environment.js';
import { errnoCode, isConfigError, type ConfigError } from '../../src/config/errors.js';
import { loadKubeconfigContext, type ConfigSource } from '../../src/config/loaders.js';

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

async function readCa(caData: string | undefined, caFile: string | undefined, where: string): Promise<string | undefined> {
  if (caData) return Buffer.from(caData, 'base64').toString('utf8');
  if (caFile) {
    try {
      return await readFile(caFile, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read certificate-authority file ${caFile} of ${where}: ${describeError(e)}`);
    }
  }
  return undefined;
}

function originOf(source: ConfigSource): string {
  if (source.kind === 'kubeconfig') return source.paths.join(path.delimiter);
  if (source.kind === 'in-cluster') return 'in-cluster configuration';
  return source.path;
}

/** The loader's error in the CLI's words: the flag to fix first. */
function usageMessage(e: ConfigError, sel: ClusterSelector, kubeconfigFlag: string, contextFlag: string): string {
  const { name, path: file, names } = e.details;
  if (e.code === 'ContextNotFound' && name !== undefined) {
    const known = names && names.length > 0 ? ` (contexts: ${names.join(', ')})` : '';
    return `context ${JSON.stringify(name)} (${sel.context !== undefined ? contextFlag : 'current context'}) not found in kubeconfig ${file ?? 'files'}${known}`;
  }
  if (e.code === 'ContextNotFound') return `${e.message}; pass ${contextFlag}`;
  if (e.code === 'ReadFailed' && sel.kubeconfig !== undefined && file === path.resolve(sel.kubeconfig) && errnoCode(e.cause) === 'ENOENT') {
    return `kubeconfig file ${sel.kubeconfig} given with ${kubeconfigFlag} does not exist`;
  }
  if (e.code === 'NoConfiguration') return `no kubeconfig found: pass ${kubeconfigFlag} or set KUBECONFIG (${e.message})`;
  return sel.kubeconfig !== undefined ? `${e.message} (${kubeconfigFlag})` : e.message;
}

/**
 * The KubeConfig for one cluster, its current context set to `sel.context` (or the file's
 * current context). `flagPrefix` is `--target-`, `--source-` or `--`, for messages.
 */
export async function loadCluster(sel: ClusterSelector, flagPrefix: string, env: LoaderEnvironment = loaderEnvironment()): Promise<LoadedCluster> {
  const kubeconfigFlag = `${flagPrefix}kubeconfig`;
  const contextFlag = `${flagPrefix}context`;
  let loaded;
  try {
    loaded = (await loadKubeconfigContext(env, sel.kubeconfig ?? '', sel.context ?? '')).value;
  } catch (e) {
    if (!isConfigError(e)) throw e;
    throw new UsageError(usageMessage(e, sel, kubeconfigFlag, contextFlag));
  }
  const kc = loaded.kubeConfig;
  const origin = originOf(loaded.source);
  const context = kc.getContextObject(kc.getCurrentContext());
  const cluster = kc.getCurrentCluster();
  if (context === null || cluster === null) throw new UsageError(`kubeconfig ${origin} has no usable current context; pass ${contextFlag}`);
  const where = `cluster ${JSON.stringify(cluster.name)} in kubeconfig ${origin}`;
  const caPem = await readCa(cluster.caData, cluster.caFile, where);
  return {
    kc,
    contextName: loaded.source.kind === 'in-cluster' ? 'in-cluster' : context.name,
    clusterName: cluster.name,
    server: cluster.server,
    ...(caPem !== undefined ? { caPem } : {}),
    skipTLSVerify: cluster.skipTLSVerify,
    namespace: loaded.namespace,
    origin,
  };
}
