// client-node 2.0.1 drops a kubeconfig user's standard `tokenFile`, and its own FileAuth re-reads
// a token file only once a minute and sends it untrimmed. This authenticator reads the file again
// whenever it changed (one stat per request: a kubelet `..data` swap changes the inode), trims it,
// and fails with an error naming the user and file.
import { readFile, stat } from 'node:fs/promises';
import type { KubeConfig, User } from '@kubernetes/client-node';
import { ConfigError, errnoCode } from './errors.js';
import { retryWhileMissing } from './volume.js';

/** The auth-provider name that marks a user as authenticated by a re-read token file. */
export const TOKEN_FILE_AUTH_PROVIDER = 'mcsa-token-file';

type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];
type RequestOptions = Parameters<Authenticator['applyAuthentication']>[1];

/** The client-node user fields that make {@link TokenFileAuthenticator} read `path`. */
export function tokenFileAuthProvider(path: string): { name: string; config: { path: string } } {
  return { name: TOKEN_FILE_AUTH_PROVIDER, config: { path } };
}

/** The token file a user reads, when it is authenticated by {@link TokenFileAuthenticator}. */
export function tokenFileOf(user: User | null | undefined): string | undefined {
  const provider: unknown = user?.authProvider;
  if (typeof provider !== 'object' || provider === null) return undefined;
  const { name, config } = provider as { name?: unknown; config?: unknown };
  if (name !== TOKEN_FILE_AUTH_PROVIDER || typeof config !== 'object' || config === null) return undefined;
  const path = (config as { path?: unknown }).path;
  return typeof path === 'string' ? path : undefined;
}

interface Cached {
  version: string;
  token: string;
}

/** Sets `Authorization: Bearer <contents of the token file>`, re-reading the file when it changes. */
export class TokenFileAuthenticator implements Authenticator {
  private readonly cache = new Map<string, Cached>();

  isAuthProvider(user: User): boolean {
    return tokenFileOf(user) !== undefined;
  }

  async applyAuthentication(user: User, opts: RequestOptions): Promise<void> {
    const path = tokenFileOf(user)!;
    const token = await this.read(user.name, path);
    const headers = (opts.headers ?? {}) as Record<string, string | string[] | number | undefined>;
    headers.Authorization = `Bearer ${token}`;
    opts.headers = headers;
  }

  private async read(userName: string, path: string): Promise<string> {
    try {
      const s = await retryWhileMissing(() => stat(path));
      const version = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
      const cached = this.cache.get(path);
      if (cached?.version === version) return cached.token;
      const token = (await retryWhileMissing(() => readFile(path, 'utf8'))).trim();
      if (token === '') throw new ConfigError('InvalidFile', `token file ${path} of user ${userName} is empty`, { name: userName, path });
      this.cache.set(path, { version, token });
      return token;
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError('ReadFailed', `cannot read token file ${path} of user ${userName}: ${errnoCode(e) ?? String(e)}`, { name: userName, path }, { cause: e });
    }
  }
}
