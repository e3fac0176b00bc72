// The loaders proper, over an explicit LoaderEnvironment. Each returns its value together with a
// fingerprint of every byte it was built from, so the observable variants can tell a real change
// from a spurious file-system event.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { SECRET_KEYS } from '../constants.js';
import { dns1123SubdomainError } from '../naming.js';
import { CaFile, decodeFile, NamespaceFile, parseKubeconfigText, ServerFile, TokenFile } from './codecs.js';
import type { LoaderEnvironment } from './environment.js';
import { ConfigError, errnoCode, isConfigError } from './errors.js';
import { kubeConfigForContext, kubeconfigModel, mergeKubeconfigModels, type KubeconfigModel } from './kubeconfig.js';
import { TokenFileAuthenticator, tokenFileAuthProvider } from './token-file-auth.js';
import { listMountedImports, readVolumeSnapshot } from './volume.js';
import { reuseConnections } from '../kube/reuse-connections.js';

/** Where a {@link ConfigAndNamespace} came from. */
export type ConfigSource =
  | {
      /** A mounted ServiceAccountImport. */
      kind: 'import';
      /** The import's name. */
      name: string;
      /** The import's directory under the mount root. */
      path: string;
    }
  | {
      /** A kubeconfig context. */
      kind: 'kubeconfig';
      /** The context's name. */
      context: string;
      /** The kubeconfig files read (and merged), in precedence order. */
      paths: string[];
    }
  | {
      /** The in-cluster service account. */
      kind: 'in-cluster';
      /** The service account directory (`token`, `ca.crt`, `namespace`). */
      path: string;
    };

/** A client configuration and the namespace to work in. */
export interface ConfigAndNamespace {
  /** A ready `@kubernetes/client-node` KubeConfig whose current context is the one loaded. */
  kubeConfig: KubeConfig;
  /**
   * The namespace: the context's namespace; for an import without one, its `namespace` file; for
   * in-cluster, `$POD_NAMESPACE` or the service account's namespace file; else `default`.
   */
  namespace: string;
  /** Where it came from (an import, a kubeconfig context, the in-cluster service account). */
  source: ConfigSource;
}

/** A loaded value and a fingerprint of what it was built from. */
export interface Loaded<T> {
  value: T;
  fingerprint: string;
}

const IMPORT_FILES: ReadonlySet<string> = new Set(Object.values(SECRET_KEYS));
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const fingerprintOf = (parts: unknown) => sha256(JSON.stringify(parts));

/** Throws `InvalidName` unless `name` is a DNS-1123 subdomain (no `/`, no `..`). */
function validateImportName(name: string): void {
  const why = dns1123SubdomainError(name);
  if (why) throw new ConfigError('InvalidName', `invalid service account import name ${JSON.stringify(name.slice(0, 300))}: ${why}`, { name });
}

/** The names of the imports mounted under the environment's mount root. */
export function mountedImportNames(env: LoaderEnvironment): Promise<string[]> {
  return listMountedImports(env.mountRoot);
}

/** The import mounted as `name`. */
export async function loadImport(env: LoaderEnvironment, name: string): Promise<Loaded<ConfigAndNamespace>> {
  validateImportName(name);
  const dir = path.join(env.mountRoot, name);
  const snapshot = await readVolumeSnapshot(dir, IMPORT_FILES);
  if (!snapshot) {
    const mounted = await listMountedImports(env.mountRoot).catch(() => []);
    const hint = mounted.length ? `mounted: ${mounted.join(', ')}` : `no import is mounted under ${env.mountRoot}`;
    throw new ConfigError('NotMounted', `service account import ${name} is not mounted (nothing at ${dir}; ${hint})`, { name, path: dir, names: mounted });
  }
  const text = (key: string) => snapshot.files.get(key)?.toString('utf8');
  const file = (key: string) => path.join(dir, key);
  const config = text(SECRET_KEYS.config);
  if (config === undefined) {
    throw new ConfigError('InvalidFile', `${dir}: service account import ${name} has no ${SECRET_KEYS.config} file (files: ${[...snapshot.files.keys()].join(', ') || 'none'})`, {
      name,
      path: file(SECRET_KEYS.config),
    });
  }
  const namespaceText = text(SECRET_KEYS.namespace);
  const namespaceFile = namespaceText === undefined ? undefined : decodeFile(NamespaceFile, namespaceText, file(SECRET_KEYS.namespace)).trim();
  const checks: [string, typeof ServerFile][] = [
    [SECRET_KEYS.server, ServerFile],
    [SECRET_KEYS.token, TokenFile],
    [SECRET_KEYS.caCrt, CaFile],
  ];
  for (const [key, codec] of checks) {
    const v = text(key);
    if (v !== undefined) decodeFile(codec, v, file(key));
  }
  const model = kubeconfigModel(parseKubeconfigText(config, file(SECRET_KEYS.config)), file(SECRET_KEYS.config), env.mountRoot);
  const { kubeConfig, context } = await kubeConfigForContext(model, undefined);
  return {
    value: { kubeConfig, namespace: context.namespace ?? namespaceFile ?? 'default', source: { kind: 'import', name, path: dir } },
    fingerprint: fingerprintOf(['import', name, [...snapshot.files].map(([k, v]) => [k, sha256(v)])]),
  };
}

/** Every mounted import, by name (sorted). An import that vanishes while being read is left out. */
export async function loadAllImports(env: LoaderEnvironment): Promise<Loaded<Map<string, ConfigAndNamespace>>> {
  const names = await listMountedImports(env.mountRoot);
  const loaded = await Promise.all(
    names.map((n) =>
      loadImport(env, n).catch((e: unknown) => {
        if (isConfigError(e, 'NotMounted')) return undefined;
        throw e;
      }),
    ),
  );
  const value = new Map<string, ConfigAndNamespace>();
  const fingerprints: string[] = [];
  loaded.forEach((l, i) => {
    if (!l) return;
    value.set(names[i]!, l.value);
    fingerprints.push(l.fingerprint);
  });
  return { value, fingerprint: fingerprintOf(['imports', fingerprints]) };
}

/** Error for loaders that need exactly one mounted import. */
function importCountError(names: string[], root: string): ConfigError {
  if (names.length === 0) {
    return new ConfigError('NoImportMounted', `no service account import is mounted (0 under ${root})`, { path: root, count: 0, names });
  }
  return new ConfigError(
    'SeveralImportsMounted',
    `${names.length} service account imports are mounted under ${root} (${names.join(', ')}): pick one by name with namedServiceAccountImportConfigAndNamespace(name)`,
    { path: root, count: names.length, names },
  );
}

/** The single mounted import; an error naming the count when there are none or several. */
export async function loadSingleImport(env: LoaderEnvironment): Promise<Loaded<ConfigAndNamespace>> {
  const names = await listMountedImports(env.mountRoot);
  if (names.length !== 1) throw importCountError(names, env.mountRoot);
  return loadImport(env, names[0]!);
}

/** A kubeconfig read from files, with a fingerprint of their contents. */
interface LoadedKubeconfig {
  model: KubeconfigModel;
  fingerprint: string;
}

/**
 * Reads and merges kubeconfig files: `explicitPath` alone (which must exist), or the
 * environment's default list (missing files skipped). Undefined when no file was found or the
 * result has no context.
 */
export async function loadKubeconfigFiles(env: LoaderEnvironment, explicitPath?: string): Promise<LoadedKubeconfig | undefined> {
  const paths = explicitPath ? [path.resolve(explicitPath)] : env.kubeconfigPaths;
  const models: KubeconfigModel[] = [];
  const hashes: [string, string][] = [];
  for (const p of paths) {
    let text: string;
    try {
      text = await readFile(p, 'utf8');
    } catch (e) {
      if (!explicitPath && (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR')) continue;
      throw new ConfigError('ReadFailed', `cannot read kubeconfig ${p}: ${errnoCode(e) ?? String(e)}`, { path: p }, { cause: e });
    }
    models.push(kubeconfigModel(parseKubeconfigText(text, p), p, env.mountRoot));
    hashes.push([p, sha256(text)]);
  }
  if (models.length === 0) return undefined;
  const model = mergeKubeconfigModels(models);
  if (model.contexts.length === 0 && !explicitPath) return undefined;
  return { model, fingerprint: fingerprintOf(['kubeconfig', hashes]) };
}

async function contextConfig(k: LoadedKubeconfig, context: string | undefined): Promise<Loaded<ConfigAndNamespace>> {
  const { kubeConfig, context: ctx } = await kubeConfigForContext(k.model, context);
  return {
    value: { kubeConfig, namespace: ctx.namespace ?? 'default', source: { kind: 'kubeconfig', context: ctx.name, paths: k.model.sources } },
    fingerprint: fingerprintOf(['context', ctx.name, k.fingerprint]),
  };
}

/** The in-cluster service account's config, or undefined when not running in a cluster. */
async function loadInCluster(env: LoaderEnvironment): Promise<Loaded<ConfigAndNamespace> | undefined> {
  const { host, port, dir, podNamespace } = env.inCluster;
  if (!host || !port) return undefined;
  const snapshot = await readVolumeSnapshot(dir, new Set(['token', 'ca.crt', 'namespace']));
  const token = snapshot?.files.get('token');
  if (!snapshot || !token) return undefined;
  decodeFile(TokenFile, token.toString('utf8'), path.join(dir, 'token'));
  const nsText = snapshot.files.get('namespace')?.toString('utf8');
  const nsFile = nsText === undefined ? undefined : decodeFile(NamespaceFile, nsText, path.join(dir, 'namespace')).trim();
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const kubeConfig = reuseConnections(new KubeConfig());
  kubeConfig.addAuthenticator(new TokenFileAuthenticator());
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'inCluster', server, skipTLSVerify: false, ...(snapshot.files.has('ca.crt') ? { caFile: path.join(dir, 'ca.crt') } : {}) }],
    users: [{ name: 'inClusterUser', authProvider: tokenFileAuthProvider(path.join(dir, 'token')) }],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser' }],
    currentContext: 'inClusterContext',
  });
  return {
    value: { kubeConfig, namespace: podNamespace ?? nsFile ?? 'default', source: { kind: 'in-cluster', path: dir } },
    fingerprint: fingerprintOf(['in-cluster', server, podNamespace, [...snapshot.files].map(([k, v]) => [k, sha256(v)])]),
  };
}

function noConfiguration(env: LoaderEnvironment): ConfigError {
  const kubeconfigs = env.kubeconfigPaths.join(path.delimiter) || 'none';
  return new ConfigError(
    'NoConfiguration',
    `no configuration found: no service account import mounted under ${env.mountRoot}, no kubeconfig (looked at ${kubeconfigs}) and not running in a cluster`,
    { path: env.mountRoot, count: 0 },
  );
}

/** `configAndNamespace()`: the single import, else the kubeconfig's current context, else in-cluster. */
export async function loadDefault(env: LoaderEnvironment): Promise<Loaded<ConfigAndNamespace>> {
  const names = await listMountedImports(env.mountRoot);
  if (names.length > 1) throw importCountError(names, env.mountRoot);
  if (names.length === 1) return loadImport(env, names[0]!);
  const kube = await loadKubeconfigFiles(env);
  if (kube) return contextConfig(kube, undefined);
  const inCluster = await loadInCluster(env);
  if (inCluster) return inCluster;
  throw noConfiguration(env);
}

/**
 * `configAndNamespaceForKubeconfigAndContext(file, context)`: that file (or the default list when
 * `file` is empty) and context (or the current one when empty). With no kubeconfig at all and no
 * context asked for, the in-cluster config.
 */
export async function loadKubeconfigContext(env: LoaderEnvironment, file: string, context: string): Promise<Loaded<ConfigAndNamespace>> {
  const kube = await loadKubeconfigFiles(env, file || undefined);
  if (kube) return contextConfig(kube, context || undefined);
  if (context) {
    throw new ConfigError('ContextNotFound', `context ${JSON.stringify(context)} not found: no kubeconfig (looked at ${env.kubeconfigPaths.join(path.delimiter) || 'none'})`, {
      name: context,
    });
  }
  const inCluster = await loadInCluster(env);
  if (inCluster) return inCluster;
  throw noConfiguration(env);
}

/**
 * `allNamedConfigsAndNamespaces()`: every mounted import, then every kubeconfig context whose
 * name is not already taken by an import (imports win a name clash).
 */
export async function loadAllNamed(env: LoaderEnvironment): Promise<Loaded<Map<string, ConfigAndNamespace>>> {
  const imports = await loadAllImports(env);
  const kube = await loadKubeconfigFiles(env);
  const value = new Map(imports.value);
  if (kube) {
    for (const ctx of kube.model.contexts) {
      if (value.has(ctx.name)) continue;
      value.set(ctx.name, (await contextConfig(kube, ctx.name)).value);
    }
  }
  return { value, fingerprint: fingerprintOf(['all', imports.fingerprint, kube?.fingerprint ?? null]) };
}

/**
 * `namedConfigAndNamespace(name)`: the import mounted as `name`, else the kubeconfig context of
 * that name. Only "not mounted" falls through to the context: an import that is mounted but
 * broken is an error (the Go original discarded any import error and tried the context).
 */
export async function loadNamed(env: LoaderEnvironment, name: string): Promise<Loaded<ConfigAndNamespace>> {
  const names = await listMountedImports(env.mountRoot);
  if (names.includes(name)) return loadImport(env, name);
  const kube = await loadKubeconfigFiles(env);
  if (kube?.model.contexts.some((c) => c.name === name)) return contextConfig(kube, name);
  const contexts = kube?.model.contexts.map((c) => c.name) ?? [];
  throw new ConfigError(
    'NotMounted',
    `no service account import or kubeconfig context named ${JSON.stringify(name.slice(0, 300))}: mounted imports under ${env.mountRoot}: ${names.join(', ') || 'none'}; kubeconfig contexts: ${contexts.join(', ') || 'none'}`,
    { name, path: env.mountRoot, count: names.length, names },
  );
}

/**
 * The context names of a kubeconfig file (`''`: the default list, merged as kubectl merges it), in
 * file order; empty when there is no kubeconfig at all.
 */
export async function kubeconfigContextNames(env: LoaderEnvironment, file: string): Promise<string[]> {
  const kube = await loadKubeconfigFiles(env, file || undefined);
  return kube?.model.contexts.map((c) => c.name) ?? [];
}

/** The name of the single mounted import; `NoImportMounted` / `SeveralImportsMounted` otherwise. */
export async function singleImportName(env: LoaderEnvironment): Promise<string> {
  const names = await listMountedImports(env.mountRoot);
  if (names.length !== 1) throw importCountError(names, env.mountRoot);
  return names[0]!;
}
