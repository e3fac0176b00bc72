// Every API call the CLI makes goes through a ClusterClient: it names the cluster in errors,
// decodes the objects it hands back, and does server-side apply with the `kubemcsa` manager.
import { ApisApi, AuthorizationV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, VersionApi, type KubernetesObject } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { decodeOrThrow } from '../../src/api/decode.js';
import { ObjectMeta } from '../../src/api/import.js';
import { API_GROUP, API_VERSION, CLI_FIELD_MANAGER, IMPORT_PLURAL } from '../../src/constants.js';
import { CliError } from '../../src/bootstrap/errors.js';
import { describeError, httpStatusOf } from '../../src/bootstrap/describe.js';
import { describeRef, refOf, type Manifest, type ObjectRef } from '../../src/bootstrap/plan.js';
import { describePermission, type Permission } from '../../src/bootstrap/permissions.js';
import type { LoadedCluster } from './kubeconfig.js';
import { apiClient, withDeadline } from '../../streams/kube-call.js';
import { waitForObject, WaitTimeout } from '../../streams/wait.js';
import { requestToken } from '../../streams/token-request.js';
import { reviewToken } from '../../streams/self-subject-review.js';

/** The object kinds the CLI reads: only metadata is relied on, the rest is decoded per use. */
export const WithMeta = t.type({ metadata: ObjectMeta });
export type WithMeta = t.TypeOf<typeof WithMeta>;

/** A Secret as the CLI reads it: metadata (with owners) and its data keys. */
const SecretObject = t.intersection([
  t.type({ metadata: t.intersection([ObjectMeta, t.partial({ ownerReferences: t.array(t.type({ uid: t.string })) })]) }),
  t.partial({ data: t.record(t.string, t.string) }),
]);
type SecretObject = t.TypeOf<typeof SecretObject>;

const VersionInfo = t.type({ gitVersion: t.string });
const AccessReview = t.type({ status: t.type({ allowed: t.boolean }) });
const GroupList = t.type({ groups: t.array(t.type({ name: t.string, versions: t.array(t.type({ version: t.string })) })) });

type ApplyOutcome = 'created' | 'configured' | 'unchanged';

interface MintedToken {
  token: string;
  expiration: Date;
}

/** How long one API call may go unanswered before the command fails (a hung server must not hang kubemcsa). */
const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** How a dry run remembers a deleted object. */
function simulationKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export class ClusterClient {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly callTimeoutMs: number;
  /**
   * Dry run: deletes are not sent but remembered, and reads and lists no longer see what was
   * "deleted", so a whole command runs its real decisions (is this role still bound? is this
   * namespace empty?) against the cluster as it would be. Any other write is refused.
   */
  private readonly dryRun: boolean;
  private readonly simulatedDeletes = new Set<string>();

  /**
   * @param role `source`, `target` or `cluster`, for messages
   * @param name the cluster name kubemcsa uses for it (for the source and target)
   */
  constructor(
    readonly role: string,
    readonly name: string,
    readonly loaded: LoadedCluster,
    opts: { callTimeoutMs?: number; dryRun?: boolean } = {},
  ) {
    this.objects = apiClient(loaded.kc, KubernetesObjectApi);
    this.core = apiClient(loaded.kc, CoreV1Api);
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.dryRun = opts.dryRun ?? false;
  }

  private refusedInDryRun(what: string): never {
    throw new Error(`internal error: ${what} in ${this.label} during a dry run`);
  }

  /** `source cluster cluster2 (context ctx2)`: how errors and progress name this cluster. */
  get label(): string {
    return `${this.role === 'cluster' ? '' : `${this.role} `}cluster ${this.name} (context ${this.loaded.contextName})`;
  }

  /** Short tag for progress lines. */
  get tag(): string {
    return `[${this.role === 'cluster' ? '' : `${this.role} `}${this.name}]`;
  }

  /**
   * The API server's CA (PEM), which a credential for this cluster must carry. A kubeconfig
   * without one (insecure-skip-tls-verify, or trusting system roots) cannot produce a credential.
   */
  requireCa(purpose: string): string {
    const { caPem, skipTLSVerify, clusterName, origin } = this.loaded;
    if (caPem !== undefined && caPem.trim() !== '') return caPem;
    const why = skipTLSVerify ? 'uses insecure-skip-tls-verify and has no certificate authority' : 'has no certificate authority';
    throw new CliError(
      `${this.label}: kubeconfig cluster ${JSON.stringify(clusterName)} in ${origin} ${why}; ${purpose} needs the CA ` +
        '(add certificate-authority-data or certificate-authority to that cluster)',
    );
  }

  /** Runs one API call under the call deadline; a failure becomes a CliError naming `what` and this cluster. */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(this.callTimeoutMs, this.loaded.server, fn);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`cannot ${what} in ${this.label}: ${describeError(e)}`);
    }
  }

  /** The server's version; fails with "unreachable" when nothing answers within `timeoutMs`. */
  async version(timeoutMs = 15_000): Promise<string> {
    try {
      const v = await withDeadline(timeoutMs, this.loaded.server, () => apiClient(this.loaded.kc, VersionApi).getCode());
      return decodeOrThrow(VersionInfo, v, 'version').gitVersion;
    } catch (e) {
      const status = httpStatusOf(e);
      if (status === 401 || status === 403) throw new CliError(`${this.label} at ${this.loaded.server} refused the kubeconfig's credentials: ${describeError(e)}`);
      throw new CliError(`${this.label} at ${this.loaded.server} is unreachable: ${describeError(e)}`);
    }
  }

  /**
   * Which of `permissions` the kubeconfig's own identity lacks (SelfSubjectAccessReview each).
   * Fails with a clear message when the credentials themselves are refused.
   */
  async missingPermissions(permissions: Permission[]): Promise<Permission[]> {
    const api = apiClient(this.loaded.kc, AuthorizationV1Api);
    const results = await Promise.all(
      permissions.map(async (p) => {
        try {
          const review = await withDeadline(this.callTimeoutMs, this.loaded.server, () => api.createSelfSubjectAccessReview({
            body: {
              spec: {
                resourceAttributes: {
                  verb: p.verb,
                  group: p.group,
                  resource: p.resource,
                  ...(p.subresource ? { subresource: p.subresource } : {}),
                  ...(p.namespace ? { namespace: p.namespace } : {}),
                },
              },
            },
          }));
          return decodeOrThrow(AccessReview, review, `access review of ${describePermission(p)}`).status.allowed ? undefined : p;
        } catch (e) {
          const status = httpStatusOf(e);
          if (status === 401) throw new CliError(`${this.label} at ${this.loaded.server} refused the kubeconfig's credentials: ${describeError(e)}`);
          throw new CliError(`cannot check whether ${describePermission(p)} is allowed in ${this.label}: ${describeError(e)}`);
        }
      }),
    );
    return results.filter((p): p is Permission => p !== undefined);
  }

  /** Whether the ServiceAccountImport API (the CRD) is served. */
  async servesImports(): Promise<boolean> {
    const groups = await this.call('list API groups', async () => decodeOrThrow(GroupList, await apiClient(this.loaded.kc, ApisApi).getAPIVersions(), 'API group list'));
    const group = groups.groups.find((g) => g.name === API_GROUP);
    return group?.versions.some((v) => v.version === API_VERSION) ?? false;
  }

  /** Reads an object; undefined when it does not exist. */
  async read(ref: ObjectRef): Promise<unknown> {
    if (this.simulatedDeletes.has(simulationKey(ref.kind, ref.namespace, ref.name))) return undefined;
    return this.call(`read ${describeRef(ref)}`, async () => {
      try {
        return await this.objects.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } });
      } catch (e) {
        if (httpStatusOf(e) === 404) return undefined;
        throw e;
      }
    });
  }

  async readMeta(ref: ObjectRef): Promise<WithMeta | undefined> {
    const o = await this.read(ref);
    return o === undefined ? undefined : decodeOrThrow(WithMeta, o, `${describeRef(ref)} in ${this.label}`);
  }

  /** Reads a Secret (metadata and data); undefined when it does not exist. */
  async readSecret(ref: ObjectRef): Promise<SecretObject | undefined> {
    const o = await this.read(ref);
    return o === undefined ? undefined : decodeOrThrow(SecretObject, o, `${describeRef(ref)} in ${this.label}`);
  }

  /** Server-side apply (field manager `kubemcsa`, force); reports whether anything changed. */
  async apply(m: Manifest): Promise<{ object: unknown; meta: WithMeta; outcome: ApplyOutcome }> {
    const ref = refOf(m);
    if (this.dryRun) this.refusedInDryRun(`apply ${describeRef(ref)}`);
    const before = await this.readMeta(ref);
    const object = await this.call(`apply ${describeRef(ref)}`, () =>
      this.objects.patch(m as KubernetesObject, undefined, undefined, CLI_FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
    const meta = decodeOrThrow(WithMeta, object, `${describeRef(ref)} in ${this.label}`);
    const outcome: ApplyOutcome = before === undefined ? 'created' : before.metadata.resourceVersion === meta.metadata.resourceVersion ? 'unchanged' : 'configured';
    return { object, meta, outcome };
  }

  /**
   * Sets (string) or removes (null) annotations with a JSON merge patch, which touches no other
   * key: for objects several writers annotate. Undefined when the object does not exist.
   */
  async patchAnnotations(ref: ObjectRef, annotations: Record<string, string | null>): Promise<WithMeta | undefined> {
    if (this.dryRun) this.refusedInDryRun(`patch ${describeRef(ref)}`);
    const object = await this.call(`patch the annotations of ${describeRef(ref)}`, async () => {
      try {
        const body = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}), annotations } };
        return await this.objects.patch(body as KubernetesObject, undefined, undefined, CLI_FIELD_MANAGER, undefined, PatchStrategy.MergePatch);
      } catch (e) {
        if (httpStatusOf(e) === 404) return undefined;
        throw e;
      }
    });
    return object === undefined ? undefined : decodeOrThrow(WithMeta, object, `${describeRef(ref)} in ${this.label}`);
  }

  /** Deletes an object; `absent` when it was already gone. In a dry run: `would be deleted`, and nothing is sent. */
  async delete(ref: ObjectRef): Promise<'deleted' | 'absent' | 'would be deleted'> {
    if (this.dryRun) {
      if ((await this.read(ref)) === undefined) return 'absent';
      this.simulatedDeletes.add(simulationKey(ref.kind, ref.namespace, ref.name));
      return 'would be deleted';
    }
    return this.call(`delete ${describeRef(ref)}`, async () => {
      try {
        await this.objects.delete(
          { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } },
          undefined,
          undefined,
          undefined,
          undefined,
          'Background',
        );
        return 'deleted';
      } catch (e) {
        if (httpStatusOf(e) === 404) return 'absent';
        throw e;
      }
    });
  }

  /**
   * Waits, on a watch of that one object, until `until` holds for it (undefined: it does not
   * exist); returns its state then. Fails with `onTimeout`'s message at the deadline.
   */
  async waitFor<T extends { metadata: { name: string } }>(
    ref: ObjectRef,
    codec: t.Type<T, unknown, unknown>,
    until: (current: T | undefined) => boolean,
    timeoutMs: number,
    onTimeout: (last: T | undefined) => string,
  ): Promise<T | undefined> {
    const resource = await this.call(`look up the resource of ${ref.kind}`, () =>
      // client-node's own discovery (cached per client), public in JavaScript but typed protected.
      (this.objects as unknown as { resource(apiVersion: string, kind: string): Promise<{ name: string } | undefined> }).resource(ref.apiVersion, ref.kind),
    );
    if (!resource) throw new CliError(`${this.label} does not serve ${ref.kind} (${ref.apiVersion})`);
    const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
    const collectionPath = `${base}${ref.namespace ? `/namespaces/${ref.namespace}` : ''}/${resource.name}`;
    try {
      return await waitForObject<T>({
        kubeConfig: this.loaded.kc,
        collectionPath,
        name: ref.name,
        project: (raw) => decodeOrThrow(codec, raw, `${describeRef(ref)} in ${this.label}`),
        describe: `${describeRef(ref)} in ${this.label}`,
        until,
        timeoutMs,
        onTimeout: (last, watchError) => `${onTimeout(last)}${watchError ? ` (watch: ${watchError})` : ''}`,
      });
    } catch (e) {
      if (e instanceof WaitTimeout) throw new CliError(e.message);
      throw e;
    }
  }

  /** Lists objects (all namespaces when `namespace` is undefined), items decoded for metadata. */
  async list(apiVersion: string, kind: string, opts: { namespace?: string; labelSelector?: string } = {}): Promise<Array<{ raw: unknown; meta: WithMeta }>> {
    const where = opts.namespace ? ` in namespace ${opts.namespace}` : '';
    const list = await this.call(`list ${kind}${where}`, () =>
      this.objects.list(apiVersion, kind, opts.namespace, undefined, undefined, undefined, undefined, opts.labelSelector),
    );
    const items = decodeOrThrow(t.type({ items: t.array(t.unknown) }), list, `${kind} list in ${this.label}`).items;
    return items
      .map((raw) => ({ raw, meta: decodeOrThrow(WithMeta, raw, `${kind} in ${this.label}`) }))
      .filter(({ meta }) => !this.simulatedDeletes.has(simulationKey(kind, meta.metadata.namespace ?? undefined, meta.metadata.name)));
  }

  /** Lists ServiceAccountImports (all namespaces when `namespace` is undefined). */
  async listImports(namespace?: string): Promise<unknown[]> {
    const api = apiClient(this.loaded.kc, CustomObjectsApi);
    const where = namespace ? ` in namespace ${namespace}` : ' in all namespaces';
    const list: unknown = await this.call(`list ServiceAccountImports${where}`, () =>
      namespace
        ? api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: IMPORT_PLURAL })
        : api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: IMPORT_PLURAL }),
    );
    return decodeOrThrow(t.type({ items: t.array(t.unknown) }), list, `ServiceAccountImport list in ${this.label}`).items;
  }

  /**
   * Whether this cluster's API server still authenticates `token` (a SelfSubjectReview made with
   * it, at the server and CA of this kubeconfig): false on HTTP 401. The token is never logged.
   */
  async acceptsToken(token: string): Promise<boolean> {
    const cluster = this.loaded.kc.getCurrentCluster();
    if (cluster === null) throw new CliError(`${this.label}: kubeconfig has no cluster for context ${this.loaded.contextName}`);
    return this.call('check whether a token is still accepted', async () => (await reviewToken(cluster, token, this.label)).accepted);
  }

  /** TokenRequest for a ServiceAccount (`serviceaccounts/<name>/token`). */
  async mintToken(namespace: string, name: string, expirationSeconds: number, audiences: string[]): Promise<MintedToken> {
    if (this.dryRun) this.refusedInDryRun(`mint a token for ServiceAccount ${namespace}/${name}`);
    const tr = await this.call(`request a token for ServiceAccount ${namespace}/${name}`, () => requestToken(this.core, namespace, name, { audiences, expirationSeconds }, this.label));
    return { token: tr.token, expiration: tr.expirationTimestamp };
  }

  /** TokenRequest bound to a pod, as the kubelet makes it for a projected token (`pod` runs as ServiceAccount `serviceAccount`). */
  async mintPodToken(namespace: string, serviceAccount: string, pod: { name: string; uid: string }, expirationSeconds: number, audiences: string[]): Promise<MintedToken> {
    if (this.dryRun) this.refusedInDryRun(`mint a token for ServiceAccount ${namespace}/${serviceAccount}`);
    const tr = await this.call(`request a token for ServiceAccount ${namespace}/${serviceAccount} bound to pod ${pod.name}`, () =>
      requestToken(this.core, namespace, serviceAccount, { audiences, expirationSeconds, boundPod: pod }, this.label),
    );
    return { token: tr.token, expiration: tr.expirationTimestamp };
  }
}
