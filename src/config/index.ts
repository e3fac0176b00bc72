/**
 * Config loaders for clients of multicluster-service-account (`multicluster-service-account/config`).
 *
 * A pod with the annotation `multicluster.admiralty.io/service-account-import.name` gets each
 * named ServiceAccountImport mounted at
 * `/var/run/secrets/admiralty.io/serviceaccountimports/<import>/` (files `config`, `token`,
 * `ca.crt`, `server`, `namespace`). These functions turn those mounts, kubeconfig contexts or the
 * in-cluster service account into `@kubernetes/client-node` {@link KubeConfig} objects, with the
 * namespace to work in.
 *
 * Promise flavour: load once. The KubeConfigs re-read their token file whenever it changes, so
 * they keep working across token rotations without reloading.
 *
 * Observable flavour (`…$`): emit at subscription and again whenever the mounted files change
 * (the kubelet swaps a `..data` symlink atomically; a complete generation is always read, never a
 * half-written one) or an import is added or removed; no emission when nothing changed.
 * Errors end the stream (use RxJS `retry` to keep going).
 *
 * Environment: `MCSA_MOUNT_ROOT` replaces the mount root (for tests, or to run a pod's command
 * outside a pod); `tokenFile` paths under the default root are moved under it. `KUBECONFIG`,
 * `HOME`, `KUBERNETES_SERVICE_HOST`/`_PORT` and `POD_NAMESPACE` are read as client-go reads them.
 *
 * @packageDocumentation
 */
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Observable } from 'rxjs';
import { loaderEnvironment, type LoaderEnvironment, type LoaderOptions } from './environment.js';
import {
  kubeconfigContextNames,
  loadAllImports,
  loadAllNamed,
  loadDefault,
  loadImport,
  loadKubeconfigContext,
  loadNamed,
  loadSingleImport,
  mountedImportNames,
  singleImportName,
  type ConfigAndNamespace,
  type Loaded,
} from './loaders.js';
import { mountRootDirectories, watchLoaded, type WatchTiming } from './watch.js';

export { ConfigError, isConfigError, type ConfigErrorCode, type ConfigErrorDetails } from './errors.js';
export { MOUNT_ROOT_ENV, type LoaderOptions } from './environment.js';
export { TOKEN_FILE_AUTH_PROVIDER } from './token-file-auth.js';
export type { ConfigAndNamespace, ConfigSource } from './loaders.js';
export type { WatchTiming } from './watch.js';
export type { KubeConfig };

/** Options of the observable loaders: where to look, and how quickly to react. */
export interface WatchOptions extends LoaderOptions, WatchTiming {}

/** Which directories an observable variant watches besides the mount root and its imports. */
type Extra = 'kubeconfig' | 'in-cluster';

function observe<T>(options: WatchOptions, extras: Extra[], load: (env: LoaderEnvironment) => Promise<Loaded<T>>, env = loaderEnvironment(options)): Observable<T> {
  const directories = async () => {
    const dirs = await mountRootDirectories(env.mountRoot);
    if (extras.includes('kubeconfig')) dirs.push(...env.kubeconfigPaths.map((p) => path.dirname(p)));
    if (extras.includes('in-cluster')) dirs.push(env.inCluster.dir);
    return [...new Set(dirs)];
  };
  return watchLoaded(() => load(env), directories, options);
}

/**
 * The ServiceAccountImport mounted as `name`.
 *
 * The KubeConfig's current context is the one of the mounted `config` file; its user reads the
 * mounted `token` file (re-read whenever it changes). The namespace is the context's (the remote
 * namespace), else the `namespace` file, else `default`.
 *
 * @param name the import's name: a DNS-1123 subdomain (anything else, `../x` included, is rejected)
 * @throws {@link ConfigError} `InvalidName`; `NotMounted` (naming the directory and the imports
 *   that are mounted); `InvalidFile` (naming file and field); `ReadFailed`
 */
export async function namedServiceAccountImportConfigAndNamespace(name: string, options: LoaderOptions = {}): Promise<ConfigAndNamespace> {
  return (await loadImport(loaderEnvironment(options), name)).value;
}

/**
 * The single mounted ServiceAccountImport.
 *
 * @throws {@link ConfigError} `NoImportMounted` or `SeveralImportsMounted` (with the count and the
 *   names), or any error of {@link namedServiceAccountImportConfigAndNamespace}
 */
export async function serviceAccountImportConfigAndNamespace(options: LoaderOptions = {}): Promise<ConfigAndNamespace> {
  return (await loadSingleImport(loaderEnvironment(options))).value;
}

/**
 * Every mounted ServiceAccountImport, by import name (sorted). Empty when none is mounted.
 *
 * @throws {@link ConfigError} when any mounted import fails to load (the error names it)
 */
export async function allServiceAccountImportConfigsAndNamespaces(options: LoaderOptions = {}): Promise<Map<string, ConfigAndNamespace>> {
  return (await loadAllImports(loaderEnvironment(options))).value;
}

/**
 * The config a generic client should use:
 * 1. the single mounted ServiceAccountImport;
 * 2. else, with no import mounted, the current context of the kubeconfig (`$KUBECONFIG`, merged as
 *    kubectl merges it, or `~/.kube/config`);
 * 3. else the in-cluster service account.
 *
 * Several mounted imports are an error (pick one with
 * {@link namedServiceAccountImportConfigAndNamespace}); a failing import or kubeconfig is an
 * error too, never a silent fall-back to the next source.
 *
 * @throws {@link ConfigError} `SeveralImportsMounted`, `NoConfiguration`, or the error of the
 *   source that failed
 */
export async function configAndNamespace(options: LoaderOptions = {}): Promise<ConfigAndNamespace> {
  return (await loadDefault(loaderEnvironment(options))).value;
}

/**
 * Every mounted ServiceAccountImport (by import name) plus every context of the kubeconfig (by
 * context name). On a name clash the **import wins** and the context is left out: in a pod the
 * mount is the credential meant for that name. Imports come first (sorted), then contexts in
 * kubeconfig order. No in-cluster entry.
 *
 * @throws {@link ConfigError} when any import or context fails to load (the error names it)
 */
export async function allNamedConfigsAndNamespaces(options: LoaderOptions = {}): Promise<Map<string, ConfigAndNamespace>> {
  return (await loadAllNamed(loaderEnvironment(options))).value;
}

/**
 * The config of one kubeconfig context.
 *
 * @param kubeconfigPath a kubeconfig file (which must exist), or `''` for the default rules
 *   (`$KUBECONFIG` merged as kubectl does, else `~/.kube/config`; with none, the in-cluster
 *   config — only when no context is asked for)
 * @param context a context name, or `''` for the current context (or the only one)
 * @throws {@link ConfigError} `ContextNotFound` (listing the contexts), `ReadFailed`,
 *   `InvalidFile`, `NoConfiguration`
 */
export async function configAndNamespaceForKubeconfigAndContext(kubeconfigPath: string, context: string, options: LoaderOptions = {}): Promise<ConfigAndNamespace> {
  return (await loadKubeconfigContext(loaderEnvironment(options), kubeconfigPath, context)).value;
}

/** The names of the imports mounted now (sorted): directories under the mount root with a volume in them. */
export async function mountedServiceAccountImportNames(options: LoaderOptions = {}): Promise<string[]> {
  return mountedImportNames(loaderEnvironment(options));
}

/**
 * The config named `name`: the ServiceAccountImport mounted as `name`, else the kubeconfig
 * context of that name (the Go library's `NamedConfigAndNamespace`). Only an import that is not
 * mounted falls through to the context; a mounted import that fails to load is an error, never
 * replaced by a context of the same name.
 *
 * @throws {@link ConfigError} `NotMounted` when neither exists (listing both), or the error of
 *   the import or context that failed
 */
export async function namedConfigAndNamespace(name: string, options: LoaderOptions = {}): Promise<ConfigAndNamespace> {
  return (await loadNamed(loaderEnvironment(options), name)).value;
}

/**
 * The context names of a kubeconfig, in file order (the Go library's `AllContextsForKubeconfig`,
 * whose order was random).
 *
 * @param kubeconfigPath a kubeconfig file (which must exist), or `''` for the default rules
 *   (`$KUBECONFIG` merged as kubectl does, else `~/.kube/config`); none found → empty
 * @throws {@link ConfigError} `ReadFailed`, `InvalidFile`
 */
export async function allContextsForKubeconfig(kubeconfigPath: string, options: LoaderOptions = {}): Promise<string[]> {
  return kubeconfigContextNames(loaderEnvironment(options), kubeconfigPath);
}

/** Whether an import named `name` is mounted now (a directory with a volume in it under the mount root). */
export async function serviceAccountImportMounted(name: string, options: LoaderOptions = {}): Promise<boolean> {
  return (await mountedImportNames(loaderEnvironment(options))).includes(name);
}

/**
 * The name of the single mounted ServiceAccountImport.
 *
 * @throws {@link ConfigError} `NoImportMounted` or `SeveralImportsMounted` (with the count and the names)
 */
export async function singleServiceAccountImportName(options: LoaderOptions = {}): Promise<string> {
  return singleImportName(loaderEnvironment(options));
}

/**
 * Observable {@link namedConfigAndNamespace}: a fresh value whenever the import's files or the
 * kubeconfig change (an import mounted later replaces a context of the same name).
 */
export function namedConfigAndNamespace$(name: string, options: WatchOptions = {}): Observable<ConfigAndNamespace> {
  return observe(options, ['kubeconfig'], (env) => loadNamed(env, name));
}

/**
 * Observable {@link namedServiceAccountImportConfigAndNamespace}: a fresh value whenever the
 * import's files change. Errors (`NotMounted` included) if the import is missing at subscription
 * or goes away.
 */
export function namedServiceAccountImportConfigAndNamespace$(name: string, options: WatchOptions = {}): Observable<ConfigAndNamespace> {
  return observe(options, [], (env) => loadImport(env, name));
}

/**
 * Observable {@link serviceAccountImportConfigAndNamespace}: errors when the number of mounted
 * imports is (or becomes) other than one.
 */
export function serviceAccountImportConfigAndNamespace$(options: WatchOptions = {}): Observable<ConfigAndNamespace> {
  return observe(options, [], loadSingleImport);
}

/** Observable {@link allServiceAccountImportConfigsAndNamespaces}: re-emits when an import is added, removed or changes. */
export function allServiceAccountImportConfigsAndNamespaces$(options: WatchOptions = {}): Observable<Map<string, ConfigAndNamespace>> {
  return observe(options, [], loadAllImports);
}

/**
 * Observable {@link configAndNamespace}: follows the mounted imports, the kubeconfig files and the
 * in-cluster service account; errors when several imports become mounted.
 */
export function configAndNamespace$(options: WatchOptions = {}): Observable<ConfigAndNamespace> {
  return observe(options, ['kubeconfig', 'in-cluster'], loadDefault);
}

/** Observable {@link allNamedConfigsAndNamespaces}: follows the mounted imports and the kubeconfig files. */
export function allNamedConfigsAndNamespaces$(options: WatchOptions = {}): Observable<Map<string, ConfigAndNamespace>> {
  return observe(options, ['kubeconfig'], loadAllNamed);
}

/** Observable {@link configAndNamespaceForKubeconfigAndContext}: follows the kubeconfig file(s). */
export function configAndNamespaceForKubeconfigAndContext$(kubeconfigPath: string, context: string, options: WatchOptions = {}): Observable<ConfigAndNamespace> {
  const env = loaderEnvironment(options);
  // An explicit file is the only one read, so it is the only kubeconfig directory worth watching.
  const watchedEnv = kubeconfigPath ? { ...env, kubeconfigPaths: [path.resolve(kubeconfigPath)] } : env;
  return observe(options, ['kubeconfig', 'in-cluster'], () => loadKubeconfigContext(env, kubeconfigPath, context), watchedEnv);
}
