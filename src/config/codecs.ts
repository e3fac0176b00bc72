// io-ts codecs for every file the config loaders read: kubeconfig files (the mounted `config` and
// the user's own) and the plain files of a mounted import (`token`, `namespace`, `server`,
// `ca.crt`). Decode failures become ConfigErrors naming the file and the field, and never quote a
// value (a kubeconfig holds tokens and keys).
import { isLeft } from 'fp-ts/lib/Either.js';
import * as t from 'io-ts';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { dns1123LabelError } from '../naming.js';
import { ConfigError } from './errors.js';

const nullable = <C extends t.Mixed>(codec: C) => t.union([codec, t.null]);

const ClusterFields = t.intersection([
  t.type({ server: t.string }),
  t.partial({
    'certificate-authority-data': nullable(t.string),
    'certificate-authority': nullable(t.string),
    'insecure-skip-tls-verify': nullable(t.boolean),
    'tls-server-name': nullable(t.string),
    'proxy-url': nullable(t.string),
  }),
]);

const AuthProvider = t.intersection([t.type({ name: t.string }), t.partial({ config: nullable(t.record(t.string, t.string)) })]);

const UserFields = t.partial({
  token: nullable(t.string),
  /** The standard kubeconfig key (client-go, kubectl); client-node drops it. */
  tokenFile: nullable(t.string),
  /** client-node's non-standard spelling, read once at parse time by client-node itself. */
  'token-file': nullable(t.string),
  'client-certificate-data': nullable(t.string),
  'client-certificate': nullable(t.string),
  'client-key-data': nullable(t.string),
  'client-key': nullable(t.string),
  username: nullable(t.string),
  password: nullable(t.string),
  as: nullable(t.string),
  exec: nullable(t.UnknownRecord),
  'auth-provider': nullable(AuthProvider),
});
/** The `user` of a kubeconfig `users[]` entry, as decoded. */
export type KubeconfigUserFields = t.TypeOf<typeof UserFields>;

const NamedCluster = t.type({ name: t.string, cluster: ClusterFields });
const NamedUser = t.intersection([t.type({ name: t.string }), t.partial({ user: nullable(UserFields) })]);
const NamedContext = t.type({
  name: t.string,
  context: t.intersection([t.type({ cluster: t.string }), t.partial({ user: nullable(t.string), namespace: nullable(t.string) })]),
});

/** A kubeconfig file as written by kubectl and client-go (the fields the loaders use). */
export const KubeconfigFile = t.partial({
  apiVersion: nullable(t.string),
  kind: nullable(t.string),
  'current-context': nullable(t.string),
  clusters: nullable(t.array(NamedCluster)),
  users: nullable(t.array(NamedUser)),
  contexts: nullable(t.array(NamedContext)),
});
/** A decoded kubeconfig file. */
export type KubeconfigFile = t.TypeOf<typeof KubeconfigFile>;

function refinedString(name: string, check: (s: string) => string | undefined): t.Type<string, string, unknown> {
  return new t.Type<string, string, unknown>(
    name,
    (u): u is string => typeof u === 'string' && check(u) === undefined,
    (u, c) => {
      if (typeof u !== 'string') return t.failure(u, c, `expected ${name}, got ${typeOf(u)}`);
      const why = check(u);
      return why === undefined ? t.success(u) : t.failure(u, c, why);
    },
    t.identity,
  );
}

/** The `namespace` file: a DNS-1123 label (surrounding whitespace ignored). */
export const NamespaceFile = refinedString('a namespace name', (s) => {
  const why = dns1123LabelError(s.trim());
  return why && `not a valid namespace name: ${why}`;
});

/** The `server` file: an http(s) URL. */
export const ServerFile = refinedString('an API server URL', (s) => {
  let url: URL;
  try {
    url = new URL(s.trim());
  } catch {
    return 'not a URL';
  }
  return url.protocol === 'https:' || url.protocol === 'http:' ? undefined : `expected an https:// URL, got a ${url.protocol} URL`;
});

/** The `token` file: one non-empty token without inner whitespace. */
export const TokenFile = refinedString('a bearer token', (s) => {
  const v = s.trim();
  if (v === '') return 'empty';
  return /\s/.test(v) ? 'contains whitespace (expected a single bearer token)' : undefined;
});

/** The `ca.crt` file: PEM with at least one certificate. */
export const CaFile = refinedString('a PEM CA bundle', (s) => (/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(s) ? undefined : 'no PEM certificate in it'));

function typeOf(u: unknown): string {
  if (u === null) return 'null';
  if (u === undefined) return 'nothing';
  if (Array.isArray(u)) return 'an array';
  return typeof u === 'object' ? 'an object' : `a ${typeof u}`;
}

/** Intersections and unions add numeric context keys that are not part of the field path. */
function isCombinator(type: t.Decoder<unknown, unknown> | undefined): boolean {
  const tag = (type as { _tag?: string } | undefined)?._tag;
  return tag === 'IntersectionType' || tag === 'UnionType';
}

interface Problem {
  field: string;
  message: string;
}

/** `users.0.user.tokenFile: expected string, got a number`; values are never quoted. */
function problems(errors: t.Errors): Problem[] {
  const seen = new Map<string, Problem>();
  for (const e of errors) {
    const field = e.context
      .filter((c, i) => c.key !== '' && !isCombinator(e.context[i - 1]?.type))
      .map((c) => c.key)
      .join('.');
    const expected = e.context[e.context.length - 1]?.type.name ?? 'a value';
    const message = e.message ?? `expected ${expected}, got ${typeOf(e.value)}`;
    const key = `${field}\u0000${message}`;
    if (!seen.has(key)) seen.set(key, { field, message });
  }
  return [...seen.values()];
}

/**
 * Decodes `value` with `codec`, or throws `InvalidFile` naming `path` and the failing field(s).
 * `field` is the field prefix inside the file (e.g. `namespace` for a whole-file codec).
 */
export function decodeFile<A, O>(codec: t.Type<A, O, unknown>, value: unknown, path: string, field = ''): A {
  const r = codec.decode(value);
  if (!isLeft(r)) return r.right;
  const ps = problems(r.left).map((p) => ({ ...p, field: [field, p.field].filter(Boolean).join('.') }));
  const text = ps.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join('; ');
  throw new ConfigError('InvalidFile', `${path}: ${text}`, { path, ...(ps[0]?.field ? { field: ps[0].field } : {}) });
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split('\n').length;
  return `line ${line}, column ${offset - before.lastIndexOf('\n')}`;
}

/**
 * Parses YAML (or JSON) text and decodes it as a kubeconfig. Syntax errors name the line and
 * column but never echo the source line (it may hold a token).
 */
export function parseKubeconfigText(text: string, path: string): KubeconfigFile {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false, uniqueKeys: false });
  } catch (e) {
    const where = e instanceof YAMLParseError ? ` at ${lineAndColumn(text, e.pos[0])}` : '';
    const code = e instanceof YAMLParseError ? ` (${e.code})` : '';
    throw new ConfigError('InvalidFile', `${path}: not valid YAML${where}${code}`, { path });
  }
  // An empty file is an empty kubeconfig, as for kubectl.
  return decodeFile(KubeconfigFile, doc ?? {}, path);
}
