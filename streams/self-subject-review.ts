// "Who am I to this API server with this token?": a SelfSubjectReview made with a bearer token
// alone, for checking that a source still accepts (or now refuses) a token. The token is never
// logged or put in an error.
import { AuthenticationV1Api, KubeConfig, type Cluster } from '@kubernetes/client-node';
import * as t from 'io-ts';
import { decodeOrThrow } from '../src/api/decode.js';
import { httpStatusOf } from '../src/describe-error.js';
import { apiClient } from './kube-call.js';

const Review = t.type({ status: t.type({ userInfo: t.intersection([t.type({ username: t.string }), t.partial({ groups: t.array(t.string) })]) }) });

type ReviewAnswer = { accepted: true; username: string; groups: string[] } | { accepted: false };

/**
 * A SelfSubjectReview at `cluster` (server and CA as in a kubeconfig) authenticated by `token`
 * only: the user the server maps it to, or `accepted: false` on HTTP 401. Any other failure
 * (unreachable, 5xx) throws; the caller's withDeadline bounds the call.
 */
export async function reviewToken(cluster: Cluster, token: string, where: string): Promise<ReviewAnswer> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'token-check' }],
    users: [{ name: 'token-check', token }],
    contexts: [{ name: 'token-check', cluster: 'token-check', user: 'token-check' }],
    currentContext: 'token-check',
  });
  try {
    const review = await apiClient(kc, AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    const info = decodeOrThrow(Review, review, `SelfSubjectReview answer of ${where}`).status.userInfo;
    return { accepted: true, username: info.username, groups: info.groups ?? [] };
  } catch (e) {
    if (httpStatusOf(e) === 401) return { accepted: false };
    throw e;
  }
}
