// Where the loaders look, resolved once per call from the process environment (or given in full
// by tests): the mount root, the kubeconfig files, the in-cluster service account.
import os from 'node:os';
import path from 'node:path';
import { MOUNT_ROOT } from '../constants.js';

/**
 * The one environment variable of the library: an absolute (or cwd-relative) directory used
 * instead of `/var/run/secrets/admiralty.io/serviceaccountimports` as the mount root. Meant for
 * tests and for running a pod's command outside a pod.
 */
export const MOUNT_ROOT_ENV = 'MCSA_MOUNT_ROOT';

/** The in-cluster service account directory client-go and client-node read. */
const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Everything the loaders read from the environment. */
export interface LoaderEnvironment {
  /** Directory holding one sub-directory per mounted import. */
  mountRoot: string;
  /**
   * The kubeconfig files of the default loading rules, in precedence order: `$KUBECONFIG`'s list,
   * or `~/.kube/config`. Missing files are skipped when loading, as kubectl does.
   */
  kubeconfigPaths: string[];
  inCluster: {
    /** `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`. */
    host?: string;
    port?: string;
    /** Directory with `token`, `ca.crt` and `namespace`. */
    dir: string;
    /** `POD_NAMESPACE`, which client-go prefers over the namespace file. */
    podNamespace?: string;
  };
}

/** Options every loader accepts. */
export interface LoaderOptions {
  /** Mount root to use instead of `$MCSA_MOUNT_ROOT` or the default. */
  mountRoot?: string;
}

/** The mount root: `options.mountRoot`, else `$MCSA_MOUNT_ROOT`, else the pod path of SPEC §2. */
function mountRootFrom(options: LoaderOptions = {}, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = options.mountRoot || env[MOUNT_ROOT_ENV];
  return chosen ? path.resolve(chosen) : MOUNT_ROOT;
}

/** Resolves the environment of the current process. */
export function loaderEnvironment(options: LoaderOptions = {}, env: NodeJS.ProcessEnv = process.env): LoaderEnvironment {
  const fromEnv = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
  const home = env.HOME || os.homedir();
  const kubeconfigPaths = fromEnv.length > 0 ? fromEnv.map((p) => path.resolve(p)) : home ? [path.join(home, '.kube', 'config')] : [];
  return {
    mountRoot: mountRootFrom(options, env),
    kubeconfigPaths,
    inCluster: {
      ...(env.KUBERNETES_SERVICE_HOST ? { host: env.KUBERNETES_SERVICE_HOST } : {}),
      ...(env.KUBERNETES_SERVICE_PORT ? { port: env.KUBERNETES_SERVICE_PORT } : {}),
      dir: IN_CLUSTER_DIR,
      ...(env.POD_NAMESPACE ? { podNamespace: env.POD_NAMESPACE } : {}),
    },
  };
}
