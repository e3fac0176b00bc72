// The bare client of the controller benchmarks: the controller's three calls per import
// (TokenRequest in the source, Secret create and status patch in the target) and nothing else
// (its /proc readings are in proc.ts). Kept apart from common.ts so that bench:fleet's bare worker
// bundles only this (and client-node), not the cluster harness.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, IMPORT_PLURAL } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { buildImportSecret, mintFingerprint } from '../../src/secret.js';
import { tokenRequestFor } from '../../src/controller/decide.js';
import type { Grant } from '../../src/consent/grants.js';
import { reuseConnections } from '../../src/kube/reuse-connections.js';

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** A registration as the bare client uses it: where the source is, the importer's token there, and the grant it holds. */
export interface BareRegistration {
  server: string;
  caPem: string;
  token: string;
  /** The importer ServiceAccount's name in the source (the target's name after `kubemcsa bootstrap`). */
  importer: string;
  grant?: Grant;
}

/** The bare client: the controller's three calls per import, nothing else. */
export class BareClient {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly remotes = new Map<string, BareRegistration & { api: CoreV1Api }>();
  /** TokenRequests sent so far. */
  tokenRequests = 0;
  /**
   * `registrations`: each source's credentials and the grant it gave the target (the same work
   * the controller does: a bound TokenRequest); one client (one connection pool) per registration.
   * `remote`: the ServiceAccount every import names.
   */
  constructor(local: KubeConfig, registrations: Map<string, BareRegistration>, private readonly remote: { namespace: string; name: string }) {
    this.core = local.makeApiClient(CoreV1Api);
    this.custom = local.makeApiClient(CustomObjectsApi);
    for (const [name, r] of registrations) {
      const kc = reuseConnections(new KubeConfig());
      kc.loadFromOptions({
        clusters: [{ name, server: r.server, caData: Buffer.from(r.caPem).toString('base64'), skipTLSVerify: false }],
        users: [{ name: `bare@${name}`, token: r.token }],
        contexts: [{ name, cluster: name, user: `bare@${name}` }],
        currentContext: name,
      });
      this.remotes.set(name, { ...r, api: kc.makeApiClient(CoreV1Api) });
    }
  }

  async converge(ns: string, name: string, uid: string, cluster: string): Promise<void> {
    const remote = this.remotes.get(cluster);
    if (!remote) throw new Error(`the bare client has no registration ${cluster}`);
    const spec = { clusterName: cluster, namespace: this.remote.namespace, name: this.remote.name };
    const { request, fingerprint } = tokenRequestFor(mintFingerprint({ spec, server: remote.server, caPem: remote.caPem }), { expirationSeconds: 3600, audiences: [] }, remote.grant && { importer: remote.importer, grant: remote.grant });
    const boundObjectRef = request.boundSecret ? { apiVersion: 'v1', kind: 'Secret', name: request.boundSecret, ...(request.boundSecretUid ? { uid: request.boundSecretUid } : {}) } : undefined;
    this.tokenRequests++;
    const tr = await remote.api.createNamespacedServiceAccountToken({ namespace: this.remote.namespace, name: this.remote.name, body: { spec: { expirationSeconds: request.expirationSeconds, audiences: request.audiences, ...(boundObjectRef ? { boundObjectRef } : {}) } } });
    const expiration = new Date(tr.status!.expirationTimestamp!);
    await this.core.createNamespacedSecret({ namespace: ns, body: buildImportSecret({
      importName: name, importNamespace: ns, importUid: uid,
      credential: { token: tr.status!.token!, server: remote.server, caPem: remote.caPem, namespace: this.remote.namespace },
      issued: new Date(), expiration, remoteUid: '', fingerprint,
    }) });
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: API_GROUP, version: API_VERSION, namespace: ns, plural: IMPORT_PLURAL, name, body: { status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'TokenIssued', message: 'bare', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), observedGeneration: 1 }],
        secrets: [{ name: secretNameForImport(name) }], observedGeneration: 1, expirationTimestamp: expiration.toISOString().replace(/\.\d+Z$/, 'Z'),
      } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
