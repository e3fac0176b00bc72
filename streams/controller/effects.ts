import { CoreV1Api, CustomObjectsApi, PatchStrategy, type CoreV1Event, type KubeConfig, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import type { ImportStatus } from '../../src/api/import.js';
import type { TokenRequestPlan } from '../../src/controller/decide.js';
import { API_GROUP, API_VERSION, CONTROLLER_FIELD_MANAGER, IMPORT_PLURAL } from '../../src/constants.js';
import { callOptions } from '../kube-call.js';
import { requestToken } from '../token-request.js';
import { httpStatusOf } from '../../src/describe-error.js';

/** What a source answered to a TokenRequest (decoded: a token and its expiry are always there). */
interface IssuedToken {
  token: string;
  expirationTimestamp: Date;
}

/**
 * Every API call a reconcile makes, and nothing else: the reconciler decides nothing here, and
 * unit tests script these calls (test/unit/controller/reconciler.test.ts) where production makes
 * them with client-node. Errors are client-node's `ApiException`s (or network errors) as thrown.
 */
export interface ImportEffects {
  /** TokenRequest for `namespace/name` in source cluster `cluster`. */
  requestToken(cluster: string, namespace: string, name: string, request: TokenRequestPlan, signal: AbortSignal): Promise<IssuedToken>;
  /** Server-side apply of a generated Secret under the controller's field manager; the API server's answer. */
  applySecret(secret: V1Secret, signal: AbortSignal): Promise<unknown>;
  /** Server-side apply of a federated import's ConfigMap under the controller's field manager; the API server's answer. */
  applyConfigMap(configMap: V1ConfigMap, signal: AbortSignal): Promise<unknown>;
  /**
   * Deletes a generated object an import no longer uses (its mode changed, or the import is gone);
   * resolves on 404 too. With `resourceVersion`, only that version of it (409 Conflict otherwise).
   */
  deleteGenerated(kind: 'Secret' | 'ConfigMap', namespace: string, name: string, signal: AbortSignal, resourceVersion?: string): Promise<void>;
  /** Merge-patches an import's status (`remove`: status fields to delete); the API server's answer. */
  patchStatus(namespace: string, name: string, status: ImportStatus, remove?: readonly string[]): Promise<unknown>;
  /** Creates an Event (off the reconcile path: streams/controller/events.ts). */
  createEvent(event: CoreV1Event): Promise<void>;
}

/** The production effects: the local cluster's API and each source's, with a deadline per call. */
export function kubeImportEffects(local: KubeConfig, sources: { kubeConfigOf(cluster: string): KubeConfig | undefined }, timeoutMs: number): ImportEffects {
  const core = local.makeApiClient(CoreV1Api);
  const custom = local.makeApiClient(CustomObjectsApi);
  const remote = new WeakMap<KubeConfig, CoreV1Api>();
  return {
    async requestToken(cluster, namespace, name, request, signal) {
      const kc = sources.kubeConfigOf(cluster);
      if (!kc) throw new Error(`cluster "${cluster}" is no longer registered`);
      let api = remote.get(kc);
      if (!api) remote.set(kc, (api = kc.makeApiClient(CoreV1Api)));
      return requestToken(api, namespace, name, request, `cluster "${cluster}"`, callOptions({ timeoutMs, signal }));
    },
    applySecret: (secret, signal) =>
      core.patchNamespacedSecret(
        { namespace: secret.metadata!.namespace!, name: secret.metadata!.name!, body: secret, fieldManager: CONTROLLER_FIELD_MANAGER, force: true },
        callOptions({ timeoutMs, signal, contentType: PatchStrategy.ServerSideApply }),
      ),
    applyConfigMap: (configMap, signal) =>
      core.patchNamespacedConfigMap(
        { namespace: configMap.metadata!.namespace!, name: configMap.metadata!.name!, body: configMap, fieldManager: CONTROLLER_FIELD_MANAGER, force: true },
        callOptions({ timeoutMs, signal, contentType: PatchStrategy.ServerSideApply }),
      ),
    async deleteGenerated(kind, namespace, name, signal, resourceVersion) {
      const req = { namespace, name, ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}) };
      try {
        if (kind === 'Secret') await core.deleteNamespacedSecret(req, callOptions({ timeoutMs, signal }));
        else await core.deleteNamespacedConfigMap(req, callOptions({ timeoutMs, signal }));
      } catch (e) {
        if (httpStatusOf(e) !== 404) throw e;
      }
    },
    patchStatus: (namespace, name, status, remove = []) =>
      custom.patchNamespacedCustomObjectStatus(
        // A merge patch deletes a field given as null.
        { group: API_GROUP, version: API_VERSION, namespace, plural: IMPORT_PLURAL, name, body: { status: { ...status, ...Object.fromEntries(remove.map((k) => [k, null])) } } },
        callOptions({ timeoutMs, contentType: PatchStrategy.MergePatch }),
      ),
    async createEvent(event) {
      await core.createNamespacedEvent({ namespace: event.metadata!.namespace!, body: event }, callOptions({ timeoutMs }));
    },
  };
}
