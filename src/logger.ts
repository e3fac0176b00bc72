import winston from 'winston';

/** Keys whose values are never written to a log line, wherever they appear. */
const SECRET_KEYS = new Set([
  'token',
  'ca.crt',
  'config',
  'data',
  'stringData',
  'client-key-data',
  'client-certificate-data',
  'authorization',
  'password',
  'keyPem',
  'tls.key',
  'caBundle',
]);
const REDACTED = '[redacted]';
/** A JWT-looking string: three base64url segments, the first a JSON header. */
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/g;
const PEM_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;
/** A credential after an HTTP auth scheme, whatever its shape (opaque tokens are not JWTs). */
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** A log line's string values stop at this many characters (a hostile error text cannot flood the log). */
const MAX_LOG_STRING = 8192;

/** Removes secret material from any value about to be logged (deep, cycle-safe). */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return value.replace(JWT, REDACTED).replace(PEM_KEY, REDACTED).replace(BEARER, `$1 ${REDACTED}`);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message, seen), ...(value.stack ? { stack: redact(value.stack, seen) } : {}) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.has(k) || SECRET_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, seen);
  }
  return out;
}

function bounded(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return value.length > MAX_LOG_STRING ? `${value.slice(0, MAX_LOG_STRING)}… (${value.length} characters in all)` : value;
  if (value === null || typeof value !== 'object' || seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => bounded(v, seen));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bounded(v, seen)]));
}

const redactFormat = winston.format((info) => {
  const clean = bounded(redact({ ...info })) as Record<string, unknown>;
  for (const k of Object.keys(clean)) (info as Record<string, unknown>)[k] = clean[k];
  return info;
});

export type Logger = winston.Logger;

/**
 * The project's one logger: JSON lines with a timestamp, secret material redacted. Components
 * take child loggers (`logger.child({controller, key})`) so every line names what it is about.
 */
export function createLogger(opts: { level?: string; component: string; stream?: NodeJS.WritableStream }): Logger {
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] });
  return winston.createLogger({
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    defaultMeta: { component: opts.component },
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [transport],
  });
}
