// Kubeconfig files → client-node KubeConfig objects, without client-node's own parser (which drops
// `tokenFile`, reads `token-file` once, and throws on the duplicate names kubectl tolerates when
// merging). Paths are resolved against the file's directory, and paths under the default mount
// root are moved under an overridden one.
import { access, constants as fsConstants } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { MOUNT_ROOT } from '../constants.js';
import type { KubeconfigFile, KubeconfigUserFields } from './codecs.js';
import { ConfigError } from './errors.js';
import { TokenFileAuthenticator, tokenFileAuthProvider, tokenFileOf } from './token-file-auth.js';
import { retryWhileMissing } from './volume.js';
import { reuseConnections } from '../kube/reuse-connections.js';

/** A decoded kubeconfig (one file, or several merged), in client-node's shapes. */
export interface KubeconfigModel {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext?: string;
  /** The file(s) it came from, for error messages. */
  sources: string[];
}

/**
 * Moves a path under the default mount root (`/var/run/secrets/admiralty.io/serviceaccountimports`)
 * to the same place under `mountRoot`; other paths are returned unchanged.
 */
function remapMountPath(p: string, mountRoot: string): string {
  if (path.resolve(mountRoot) === MOUNT_ROOT) return p;
  if (p === MOUNT_ROOT) return mountRoot;
  if (p.startsWith(`${MOUNT_ROOT}/`)) return path.join(mountRoot, p.slice(MOUNT_ROOT.length + 1));
  return p;
}

const orUndefined = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

function toUser(name: string, u: KubeconfigUserFields, resolvePath: (p: string) => string): User {
  // client-go: a token file wins over an inline token (its contents are re-read).
  const tokenFile = orUndefined(u.tokenFile) ?? orUndefined(u['token-file']);
  const certFile = orUndefined(u['client-certificate']);
  const keyFile = orUndefined(u['client-key']);
  const user: User = {
    name,
    certData: orUndefined(u['client-certificate-data']),
    certFile: certFile === undefined ? undefined : resolvePath(certFile),
    keyData: orUndefined(u['client-key-data']),
    keyFile: keyFile === undefined ? undefined : resolvePath(keyFile),
    username: orUndefined(u.username),
    password: orUndefined(u.password),
    impersonateUser: orUndefined(u.as),
    exec: orUndefined(u.exec),
    ...(tokenFile !== undefined
      ? { authProvider: tokenFileAuthProvider(resolvePath(tokenFile)) }
      : { token: orUndefined(u.token), authProvider: orUndefined(u['auth-provider']) }),
  };
  return Object.fromEntries(Object.entries(user).filter(([, v]) => v !== undefined)) as unknown as User;
}

/**
 * Turns a decoded kubeconfig file into a {@link KubeconfigModel}. Relative paths are taken from
 * `file`'s directory (as kubectl does); paths under the default mount root move under `mountRoot`.
 */
export function kubeconfigModel(doc: KubeconfigFile, file: string, mountRoot: string): KubeconfigModel {
  const dir = path.dirname(file);
  const resolvePath = (p: string) => remapMountPath(path.isAbsolute(p) ? p : path.join(dir, p), mountRoot);
  const clusters: Cluster[] = (doc.clusters ?? []).map(({ name, cluster: c }) => {
    const caFile = orUndefined(c['certificate-authority']);
    const out: Cluster = {
      name,
      server: c.server.replace(/\/$/, ''),
      caData: orUndefined(c['certificate-authority-data']),
      caFile: caFile === undefined ? undefined : resolvePath(caFile),
      skipTLSVerify: c['insecure-skip-tls-verify'] === true,
      tlsServerName: orUndefined(c['tls-server-name']),
      proxyUrl: orUndefined(c['proxy-url']),
    };
    return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as unknown as Cluster;
  });
  const users = (doc.users ?? []).map(({ name, user }) => toUser(name, user ?? {}, resolvePath));
  const contexts: Context[] = (doc.contexts ?? []).map(({ name, context: c }) => ({
    name,
    cluster: c.cluster,
    user: orUndefined(c.user) ?? '',
    ...(c.namespace ? { namespace: c.namespace } : {}),
  }));
  const currentContext = orUndefined(doc['current-context']) || undefined;
  return { clusters, users, contexts, ...(currentContext ? { currentContext } : {}), sources: [file] };
}

/**
 * Merges kubeconfigs the way kubectl merges `$KUBECONFIG`: for clusters, users and contexts the
 * first file defining a name wins, and so does the first file setting `current-context`.
 */
export function mergeKubeconfigModels(models: KubeconfigModel[]): KubeconfigModel {
  const firstByName = <T extends { name: string }>(lists: T[][]): T[] => {
    const out = new Map<string, T>();
    for (const list of lists) for (const item of list) if (!out.has(item.name)) out.set(item.name, item);
    return [...out.values()];
  };
  const currentContext = models.find((m) => m.currentContext)?.currentContext;
  return {
    clusters: firstByName(models.map((m) => m.clusters)),
    users: firstByName(models.map((m) => m.users)),
    contexts: firstByName(models.map((m) => m.contexts)),
    ...(currentContext ? { currentContext } : {}),
    sources: models.flatMap((m) => m.sources),
  };
}

const describeSources = (m: KubeconfigModel) => (m.sources.length === 1 ? m.sources[0]! : m.sources.join(path.delimiter));

/** The context to use: `context` when given, else the current context, else the only one. */
function pickContext(m: KubeconfigModel, context: string | undefined): Context {
  const names = m.contexts.map((c) => c.name);
  const wanted = context || m.currentContext || (m.contexts.length === 1 ? m.contexts[0]!.name : undefined);
  if (!wanted) {
    throw new ConfigError('ContextNotFound', `${describeSources(m)}: no current-context set and ${m.contexts.length} contexts to choose from (${names.join(', ') || 'none'})`, {
      path: describeSources(m),
      names,
    });
  }
  const found = m.contexts.find((c) => c.name === wanted);
  if (!found) {
    throw new ConfigError('ContextNotFound', `${describeSources(m)}: context ${JSON.stringify(wanted)} not found (contexts: ${names.join(', ') || 'none'})`, {
      name: wanted,
      path: describeSources(m),
      names,
    });
  }
  return found;
}

async function assertReadable(file: string, what: string, m: KubeconfigModel, name: string): Promise<void> {
  try {
    await retryWhileMissing(() => access(file, fsConstants.R_OK));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new ConfigError('ReadFailed', `${describeSources(m)}: ${what} ${file} cannot be read (${code})`, { name, path: file }, { cause: e });
  }
}

/**
 * A new KubeConfig holding `m` with `context` current (checked: the context exists and names a
 * defined cluster and user, and the files they reference are readable). Each call returns an
 * independent object, so callers may mutate it.
 */
export async function kubeConfigForContext(m: KubeconfigModel, context: string | undefined): Promise<{ kubeConfig: KubeConfig; context: Context }> {
  const ctx = pickContext(m, context);
  const cluster = m.clusters.find((c) => c.name === ctx.cluster);
  if (!cluster) {
    throw new ConfigError('InvalidFile', `${describeSources(m)}: context ${ctx.name} refers to cluster ${JSON.stringify(ctx.cluster)}, which is not defined`, {
      name: ctx.name,
      path: describeSources(m),
      field: 'contexts',
    });
  }
  const user = ctx.user ? m.users.find((u) => u.name === ctx.user) : undefined;
  if (ctx.user && !user) {
    throw new ConfigError('InvalidFile', `${describeSources(m)}: context ${ctx.name} refers to user ${JSON.stringify(ctx.user)}, which is not defined`, {
      name: ctx.name,
      path: describeSources(m),
      field: 'contexts',
    });
  }
  if (cluster.caFile) await assertReadable(cluster.caFile, `certificate-authority of cluster ${cluster.name}`, m, ctx.name);
  const tokenFile = tokenFileOf(user);
  if (tokenFile) await assertReadable(tokenFile, `tokenFile of user ${user!.name}`, m, ctx.name);
  if (user?.certFile) await assertReadable(user.certFile, `client-certificate of user ${user.name}`, m, ctx.name);
  if (user?.keyFile) await assertReadable(user.keyFile, `client-key of user ${user.name}`, m, ctx.name);

  const kubeConfig = reuseConnections(new KubeConfig());
  kubeConfig.addAuthenticator(new TokenFileAuthenticator());
  kubeConfig.loadFromOptions({
    clusters: m.clusters.map((c) => ({ ...c })),
    users: m.users.map((u) => ({ ...u })),
    contexts: m.contexts.map((c) => ({ ...c })),
    currentContext: ctx.name,
  });
  return { kubeConfig, context: ctx };
}
