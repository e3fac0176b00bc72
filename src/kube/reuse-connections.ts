import type { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: unknown, agentOptions: unknown) => unknown;
const PATCHED = Symbol.for('multicluster-service-account.reuse-connections');

/**
 * Makes `kc` reuse one HTTP dispatcher (connection pool) per cluster and user.
 *
 * client-node 2.0.1 builds a new undici Agent for every request of its generated APIs, so each
 * call opens a new TLS connection and leaves an idle pool behind (fixed upstream later, PR #2904).
 * Under load that costs a handshake per call and memory per request. Credentials are unaffected:
 * tokens travel in headers applied per request; client certificates belong to the user, which is
 * part of the key. Idempotent; returns `kc`.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as Record<string | symbol, unknown>;
  const original = target.createDispatcher as CreateDispatcher | undefined;
  if (typeof original !== 'function' || target[PATCHED]) return kc;
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster: { name?: string; server?: string } | null, agentOptions: unknown) => {
    const key = JSON.stringify([cluster?.name ?? '', cluster?.server ?? '', kc.getCurrentUser()?.name ?? '', kc.getCurrentContext()]);
    if (!cache.has(key)) cache.set(key, original.call(kc, cluster, agentOptions));
    return cache.get(key);
  };
  target[PATCHED] = true;
  return kc;
}
