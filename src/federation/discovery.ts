// What a source API server needs from a target's ServiceAccount issuer: its discovery document
// and key set, fetched without credentials. The verdict on what kubemcsa saw when it tried.
import * as t from 'io-ts';
import { ANONYMOUS_DISCOVERY_BINDING, ISSUER_DISCOVERY_CLUSTER_ROLE } from './record.js';

/** The OpenID discovery document of a ServiceAccount issuer: the fields a JWT authenticator uses. */
export const OpenIdDiscovery = t.type({ issuer: t.string, jwks_uri: t.string });
export type OpenIdDiscovery = t.TypeOf<typeof OpenIdDiscovery>;

/** What an anonymous GET got: an HTTP status and (bounded) body, or a network/TLS failure. */
export type AnonymousAnswer = { kind: 'http'; status: number; body: string } | { kind: 'unreachable'; error: string };

export type DiscoveryVerdict =
  | { ok: true }
  /** The issuer answered but refused (401/403) or answered something else: what to do about it. */
  | { ok: false; reason: 'refused' | 'unexpected' | 'unreachable'; message: string };

/** `discoveryUrl` of an issuer: `<issuer>/.well-known/openid-configuration` unless given. */
export function discoveryUrlOf(issuerUrl: string, discoveryUrl?: string): string {
  return discoveryUrl ?? `${issuerUrl.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/** The command that opens discovery to anonymous callers, for messages. */
const ANONYMOUS_DISCOVERY_HINT =
  `rerun with --allow-anonymous-discovery, or grant it yourself: kubectl create clusterrolebinding ${ANONYMOUS_DISCOVERY_BINDING} ` +
  `--clusterrole=${ISSUER_DISCOVERY_CLUSTER_ROLE} --group=system:unauthenticated (the API server must also run with --anonymous-auth=true, the default)`;

/** What an anonymous GET of `url` (`what`: "discovery" or "JWKS") means for a source that will make the same request. */
export function judgeAnonymousAnswer(what: string, url: string, answer: AnonymousAnswer): DiscoveryVerdict {
  if (answer.kind === 'unreachable') return { ok: false, reason: 'unreachable', message: `${what} ${url} is unreachable from here: ${answer.error}` };
  if (answer.status === 401 || answer.status === 403) {
    return { ok: false, reason: 'refused', message: `${what} ${url} refuses anonymous callers (HTTP ${answer.status}); a source API server fetches it without credentials: ${ANONYMOUS_DISCOVERY_HINT}` };
  }
  if (answer.status !== 200) return { ok: false, reason: 'unexpected', message: `${what} ${url} answered HTTP ${answer.status}` };
  try {
    JSON.parse(answer.body);
  } catch {
    return { ok: false, reason: 'unexpected', message: `${what} ${url} answered HTTP 200 with a body that is not JSON` };
  }
  return { ok: true };
}
