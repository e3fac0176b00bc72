import { PatchStrategy, type CoreV1Event, type KubeConfig, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import type { ImportStatus } from '../../src/api/import.js';
import type { TokenRequestPlan } from '../../src/controller/decide.js';
import { API_GROUP, API_VERSION, CONTROLLER_FIELD_MANAGER, IMPORT_PLURAL } from '../../src/constants.js';
import { kubeHttp } from '../kube-http.js';
import { decodeTokenAnswer, tokenRequestBody } from '../token-request.js';
import { httpStatusOf } from '../../src/describe-error.js';

/** What a source answered to a TokenRequest (decoded: a token and its expiry are always there). */
interface IssuedToken {
  token: string;
  expirationTimestamp: Date;
}

/**
 * Every API call a reconcile makes, and nothing else: the reconciler decides nothing here, and
 * unit tests script these calls (test/unit/controller/reconciler.test.ts) where production makes
 * them over HTTP. Errors are client-node's `ApiException`s (or network errors, or a deadline) as thrown.
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
  /**
   * The UID of the import `namespace/name` as the API server has it now; undefined when there is
   * none. Asked before deleting an orphan: the cache may not have seen a namesake created since.
   */
  liveImportUid(namespace: string, name: string, signal: AbortSignal): Promise<string | undefined>;
  /** Merge-patches an import's status (`remove`: status fields to delete); the API server's answer. */
  patchStatus(namespace: string, name: string, status: ImportStatus, remove?: readonly string[]): Promise<unknown>;
  /** Creates an Event (off the reconcile path: streams/controller/events.ts). */
  createEvent(event: CoreV1Event): Promise<void>;
}

/** The production effects: the local cluster's API and each source's, with a deadline per call, over the lean client (streams/kube-http.ts). */
export function kubeImportEffects(local: KubeConfig, sources: { kubeConfigOf(cluster: string): KubeConfig | undefined }, timeoutMs: number): ImportEffects {
  const target = kubeHttp(local);
  const ns = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
  const apply = (path: string, body: unknown, what: string, signal: AbortSignal) =>
    target.call('PATCH', path, { body, contentType: PatchStrategy.ServerSideApply, query: { fieldManager: CONTROLLER_FIELD_MANAGER, force: 'true' }, signal, timeoutMs, what });
  return {
    async requestToken(cluster, namespace, name, request, signal) {
      const kc = sources.kubeConfigOf(cluster);
      if (!kc) throw new Error(`cluster "${cluster}" is no longer registered`);
      const where = `cluster "${cluster}"`;
      const answer = await kubeHttp(kc).call('POST', `${ns(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`, { body: tokenRequestBody(request), signal, timeoutMs, what: `TokenRequest in ${where}` });
      return decodeTokenAnswer(answer, namespace, name, where);
    },
    applySecret: (secret, signal) => apply(`${ns(secret.metadata!.namespace!)}/secrets/${encodeURIComponent(secret.metadata!.name!)}`, secret, 'Secret apply', signal),
    applyConfigMap: (configMap, signal) => apply(`${ns(configMap.metadata!.namespace!)}/configmaps/${encodeURIComponent(configMap.metadata!.name!)}`, configMap, 'ConfigMap apply', signal),
    async deleteGenerated(kind, namespace, name, signal, resourceVersion) {
      const path = `${ns(namespace)}/${kind === 'Secret' ? 'secrets' : 'configmaps'}/${encodeURIComponent(name)}`;
      try {
        await target.call('DELETE', path, { ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}), signal, timeoutMs, what: `${kind} delete` });
      } catch (e) {
        if (httpStatusOf(e) !== 404) throw e;
      }
    },
    async liveImportUid(namespace, name, signal) {
      try {
        const imp = (await target.call('GET', `/apis/${API_GROUP}/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${IMPORT_PLURAL}/${encodeURIComponent(name)}`, { signal, timeoutMs, what: 'import read' })) as { metadata?: { uid?: string } } | undefined;
        return imp?.metadata?.uid;
      } catch (e) {
        if (httpStatusOf(e) === 404) return undefined;
        throw e;
      }
    },
    patchStatus: (namespace, name, status, remove = []) =>
      // A merge patch deletes a field given as null.
      target.call('PATCH', `/apis/${API_GROUP}/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${IMPORT_PLURAL}/${encodeURIComponent(name)}/status`, {
        body: { status: { ...status, ...Object.fromEntries(remove.map((k) => [k, null])) } },
        contentType: PatchStrategy.MergePatch,
        timeoutMs,
        what: 'status patch',
      }),
    async createEvent(event) {
      await target.call('POST', `${ns(event.metadata!.namespace!)}/events`, { body: event, timeoutMs, what: 'Event create' });
    },
  };
}
