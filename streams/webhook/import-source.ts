import { ApiException, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { ServiceAccountImport } from '../../src/api/import.js';
import { API_GROUP, API_VERSION, IMPORT_PLURAL } from '../../src/constants.js';
import type { Logger } from '../../src/logger.js';
import { reuseConnections } from '../../src/kube/reuse-connections.js';
import { namespacedKey, SharedCache } from '../cache.js';
import { callOptions } from '../kube-call.js';
import { listWatch } from '../watch.js';
import type { ImportFetch } from './lookup.js';
import { projectImport } from './lookup.js';

const IMPORTS_PATH = `/apis/${API_GROUP}/${API_VERSION}/${IMPORT_PLURAL}`;

/**
 * Every ServiceAccountImport (all namespaces) through the project's shared list+watch source and
 * folded cache, projected to what admission needs.
 */
export function importWatchCache(kc: KubeConfig, log: Logger): SharedCache<ServiceAccountImport> {
  const events$ = listWatch<ServiceAccountImport>({
    kubeConfig: kc,
    path: IMPORTS_PATH,
    project: projectImport,
    describe: 'serviceaccountimports',
    logger: log,
  });
  return new SharedCache(events$, { keyOf: namespacedKey, describe: 'serviceaccountimports', logger: log });
}

/**
 * GET one import (the lookup's fallback on a cache miss); undefined on 404. Each GET has a
 * deadline (`timeoutMs`, the request aborted past it), and the GETs share kept-alive connections
 * (`reuseConnections` on `kc`): no TLS handshake per lookup.
 */
export function importFetcher(kc: KubeConfig, timeoutMs = 2000): ImportFetch {
  const api = reuseConnections(kc).makeApiClient(CustomObjectsApi);
  return async (namespace, name) => {
    try {
      const raw: unknown = await api.getNamespacedCustomObject(
        { group: API_GROUP, version: API_VERSION, namespace, plural: IMPORT_PLURAL, name },
        callOptions({ timeoutMs }),
      );
      const sai = projectImport(raw);
      if (!sai) throw new Error(`service account import "${name}" in namespace "${namespace}" does not decode`);
      return sai;
    } catch (e) {
      if (e instanceof ApiException && e.code === 404) return undefined;
      throw e;
    }
  };
}
