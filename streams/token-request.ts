import type { ConfigurationOptions, CoreV1Api } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { decodeOrThrow } from '../src/api/decode.js';
import type { TokenRequestPlan } from '../src/controller/decide.js';

/** A Date or an RFC 3339 string (client-node deserialises date-times of typed models to Date). */
const DateLike = new t.Type<Date, Date, unknown>(
  'DateLike',
  (u): u is Date => u instanceof Date,
  (u, c) => (u instanceof Date ? t.success(u) : typeof u === 'string' && !Number.isNaN(Date.parse(u)) ? t.success(new Date(u)) : t.failure(u, c)),
  (d) => d,
);

const TokenRequestAnswer = t.type({ status: t.type({ token: t.string, expirationTimestamp: DateLike }) });

/**
 * TokenRequest (`serviceaccounts/<name>/token`) with its answer decoded: the one implementation
 * the controller and kubemcsa share. `where` names the cluster in a decoding error; `options`
 * carries the call's deadline (`callOptions`) where the caller has no ambient one. `boundPod`
 * binds the token to a pod as the kubelet does (`kubemcsa status` probing a federated source).
 */
export async function requestToken(core: CoreV1Api, namespace: string, name: string, spec: TokenRequestSpec, where: string, options?: ConfigurationOptions): Promise<{ token: string; expirationTimestamp: Date }> {
  const answer = await core.createNamespacedServiceAccountToken({ namespace, name, body: tokenRequestBody(spec) }, options);
  return decodeTokenAnswer(answer, namespace, name, where);
}

type TokenRequestSpec = TokenRequestPlan & { boundPod?: { name: string; uid: string } };

/** The TokenRequest object for `spec` (what is POSTed to `serviceaccounts/<name>/token`). */
export function tokenRequestBody(spec: TokenRequestSpec) {
  return {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      expirationSeconds: spec.expirationSeconds,
      audiences: spec.audiences,
      ...(spec.boundPod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: spec.boundPod.name, uid: spec.boundPod.uid } } : {}),
      ...(spec.boundSecret ? { boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: spec.boundSecret, ...(spec.boundSecretUid ? { uid: spec.boundSecretUid } : {}) } } : {}),
    },
  };
}

/** The token and its expiry from a TokenRequest's answer (typed or raw JSON); a malformed answer throws, naming the call. */
export function decodeTokenAnswer(answer: unknown, namespace: string, name: string, where: string): { token: string; expirationTimestamp: Date } {
  const { status } = decodeOrThrow(TokenRequestAnswer, answer, `TokenRequest for ServiceAccount ${namespace}/${name} in ${where}`);
  return { token: status.token, expirationTimestamp: status.expirationTimestamp };
}
