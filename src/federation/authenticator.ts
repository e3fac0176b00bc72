// The JWT authenticator a source API server needs to trust a target's ServiceAccount issuer
// (structured authentication configuration, `apiserver.config.k8s.io/v1`, ADR 0022), and the
// edits kubemcsa makes to an AuthenticationConfiguration file: add or replace one entry (by
// issuer URL), remove one. Entries of other issuers are kept exactly as they are.
import * as t from 'io-ts';
import { parse, stringify } from 'yaml';
import { decodeOrThrow } from '../api/decode.js';
import { API_GROUP } from '../constants.js';
import { federatedPrefix } from './identity.js';

const AUTHENTICATION_CONFIG_API_VERSION = 'apiserver.config.k8s.io/v1';
const AUTHENTICATION_CONFIG_KIND = 'AuthenticationConfiguration';

/** The longest token lifetime a federated source accepts (the kubelet's projected tokens live 1 h by default). */
const MAX_FEDERATED_TOKEN_SECONDS = 86_400;

/** Extra keys (user info `extra`) a federated source records: where the calling pod lives in the target. */
const EXTRA_KEYS = {
  podName: `${API_GROUP}/pod-name`,
  podNamespace: `${API_GROUP}/pod-namespace`,
} as const;

/** One entry of `jwt` as kubemcsa writes it (field names of k8s.io/apiserver/pkg/apis/apiserver/v1). */
export interface JwtAuthenticator {
  issuer: {
    url: string;
    discoveryURL?: string;
    certificateAuthority?: string;
    audiences: string[];
  };
  claimValidationRules: Array<{ expression: string; message: string }>;
  claimMappings: {
    username: { claim: string; prefix: string };
    groups: { expression: string };
    uid: { claim: string };
    extra: Array<{ key: string; valueExpression: string }>;
  };
  userValidationRules: Array<{ expression: string; message: string }>;
}

interface FederatedTrust {
  /** The target's name, as the source knows it: the prefix of every mapped user and group. */
  targetName: string;
  /** The target's issuer (`iss` of its tokens; its discovery document's `issuer`). */
  issuerUrl: string;
  /** Where the source fetches discovery, when not `<issuerUrl>/.well-known/openid-configuration`. */
  discoveryUrl?: string;
  /** PEM of the CA that serves the issuer's discovery and JWKS endpoints; absent: the system roots. */
  caPem?: string;
  /** The one audience the source accepts (one per source: a token for another source is refused here). */
  audience: string;
}

/** CEL string literal (single quotes), for names that are DNS-1123 subdomains and audiences. */
function celString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const K8S_CLAIM = "claims['kubernetes.io']";

/**
 * The JWT authenticator entry for `trust`: username `mcsa:<target>:` + `sub`, groups
 * `mcsa:<target>:system:serviceaccounts[:<namespace>]`, uid from `sub`, the pod's name and
 * namespace as extra; only ServiceAccount tokens bound to a pod and living at most 24 h pass.
 */
export function jwtAuthenticatorFor(trust: FederatedTrust): JwtAuthenticator {
  const prefix = federatedPrefix(trust.targetName);
  const groups = `${prefix}system:serviceaccounts`;
  return {
    issuer: {
      url: trust.issuerUrl,
      ...(trust.discoveryUrl !== undefined ? { discoveryURL: trust.discoveryUrl } : {}),
      ...(trust.caPem !== undefined ? { certificateAuthority: trust.caPem } : {}),
      audiences: [trust.audience],
    },
    claimValidationRules: [
      {
        expression: `has(claims.sub) && claims.sub.startsWith('system:serviceaccount:')`,
        message: 'only ServiceAccount tokens are accepted',
      },
      {
        expression: `has(${K8S_CLAIM}.namespace) && has(${K8S_CLAIM}.pod)`,
        message: 'only tokens bound to a pod are accepted',
      },
      {
        expression: `has(claims.iat) && has(claims.exp) && claims.exp - claims.iat <= ${MAX_FEDERATED_TOKEN_SECONDS}.0`,
        message: `only tokens living at most ${MAX_FEDERATED_TOKEN_SECONDS} s are accepted`,
      },
    ],
    claimMappings: {
      username: { claim: 'sub', prefix },
      groups: { expression: `[${celString(groups)}, ${celString(`${groups}:`)} + ${K8S_CLAIM}.namespace]` },
      uid: { claim: 'sub' },
      extra: [
        { key: EXTRA_KEYS.podName, valueExpression: `${K8S_CLAIM}.pod.name` },
        { key: EXTRA_KEYS.podNamespace, valueExpression: `${K8S_CLAIM}.namespace` },
      ],
    },
    userValidationRules: [
      {
        expression: `user.username.startsWith(${celString(`${prefix}system:serviceaccount:`)})`,
        message: `federated users of ${trust.targetName} are ServiceAccounts under the ${prefix} prefix`,
      },
    ],
  };
}

/** An AuthenticationConfiguration document: the fields kubemcsa reads; every other field is kept. */
const JwtEntry = t.type({ issuer: t.type({ url: t.string }) });
const AuthenticationConfigurationDoc = t.intersection([
  t.type({ apiVersion: t.literal(AUTHENTICATION_CONFIG_API_VERSION), kind: t.literal(AUTHENTICATION_CONFIG_KIND) }),
  t.partial({ jwt: t.union([t.array(JwtEntry), t.null]) }),
]);

/** A document as read from a file: its known fields checked, the rest kept verbatim. */
export type AuthenticationConfiguration = Record<string, unknown> & {
  apiVersion: typeof AUTHENTICATION_CONFIG_API_VERSION;
  kind: typeof AUTHENTICATION_CONFIG_KIND;
  jwt?: unknown[] | null;
};

/** An AuthenticationConfiguration with no JWT authenticator (the API server accepts an empty list). */
function emptyAuthenticationConfiguration(): AuthenticationConfiguration {
  return { apiVersion: AUTHENTICATION_CONFIG_API_VERSION, kind: AUTHENTICATION_CONFIG_KIND, jwt: [] };
}

/** Decodes a file's text (YAML or JSON); `where` names the file in errors. An empty file is an empty configuration. */
export function parseAuthenticationConfiguration(text: string, where: string): AuthenticationConfiguration {
  if (text.trim() === '') return emptyAuthenticationConfiguration();
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new Error(`${where} is not YAML or JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  decodeOrThrow(AuthenticationConfigurationDoc, raw, `AuthenticationConfiguration in ${where}`);
  return raw as AuthenticationConfiguration;
}

function issuerUrlOf(entry: unknown): string | undefined {
  return JwtEntry.is(entry) ? entry.issuer.url : undefined;
}

/**
 * `doc` with `entry` in its `jwt` list: in place of an entry of the same issuer URL (the API
 * server refuses two), else appended. Other entries and fields are kept as they are.
 */
export function mergeJwtAuthenticator(doc: AuthenticationConfiguration, entry: JwtAuthenticator): AuthenticationConfiguration {
  const list = doc.jwt ?? [];
  const at = list.findIndex((e) => issuerUrlOf(e) === entry.issuer.url);
  const jwt = at === -1 ? [...list, entry] : list.map((e, i) => (i === at ? entry : e));
  return { ...doc, jwt };
}

/** Which entry to remove: the one of an issuer URL, or the one mapping a target's users (its username prefix). */
type JwtAuthenticatorMatch = { issuerUrl: string } | { targetName: string };

function matches(entry: unknown, match: JwtAuthenticatorMatch): boolean {
  if ('issuerUrl' in match) return issuerUrlOf(entry) === match.issuerUrl;
  const prefix = (entry as { claimMappings?: { username?: { prefix?: unknown } } } | null)?.claimMappings?.username?.prefix;
  return prefix === federatedPrefix(match.targetName);
}

/** `doc` without the entries `match` selects; `removed` counts them. */
export function removeJwtAuthenticator(doc: AuthenticationConfiguration, match: JwtAuthenticatorMatch): { doc: AuthenticationConfiguration; removed: number } {
  const list = doc.jwt ?? [];
  const jwt = list.filter((e) => !matches(e, match));
  return { doc: { ...doc, jwt }, removed: list.length - jwt.length };
}

/**
 * The document as kubemcsa writes it to a file (YAML; a JSON file stays JSON). A YAML file may
 * start with a one-line comment (`stamp`): the API server reloads the file on any change of its
 * bytes, so a new stamp makes it rebuild every JWT authenticator (and fetch each issuer's keys
 * again) without changing what it trusts. JSON has no comments: no stamp.
 */
export function formatAuthenticationConfiguration(doc: AuthenticationConfiguration, format: 'yaml' | 'json', stamp?: string): string {
  if (format === 'json') {
    if (stamp !== undefined) throw new Error('a JSON AuthenticationConfiguration cannot carry a comment');
    return `${JSON.stringify(doc, null, 2)}\n`;
  }
  const header = stamp === undefined ? '' : `# ${stamp.replace(/[\r\n]+/g, ' ')}\n`;
  return `${header}${stringify(doc, { lineWidth: 0 })}`;
}

/** Whether a file's text is JSON (kept as JSON when rewritten). */
export function looksLikeJson(text: string): boolean {
  return text.trimStart().startsWith('{');
}
