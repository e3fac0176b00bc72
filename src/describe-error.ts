// The project's one error describer: any error, or any text that came from another server, as one
// line that is bounded in length and never carries secret material. Everything that puts remote
// text into a condition, an Event, a log line or CLI output goes through here. Pure.
import { redact } from './logger.js';

/** At most this many characters of a description reach a condition, an Event or a log line. */
const MAX_DESCRIPTION_LENGTH = 1024;

/** A token cut short by truncation (no full JWT left for `redact` to find), at the end of a text. */
const PARTIAL_JWT_AT_END = /eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){0,2}$/;

/**
 * `text` as one line of at most `max` characters, secret material redacted. Only a bounded prefix
 * of the text is ever scanned, so a hostile multi-megabyte message costs no more than a short one.
 */
export function boundedLine(text: string, max = MAX_DESCRIPTION_LENGTH): string {
  const total = text.length;
  const head = text.slice(0, max * 4);
  let line = String(redact(head.replace(/\s*[\r\n]+\s*/g, ' ').trim()));
  if (line.length > max || total > head.length) {
    const more = `… (${total} characters in all)`;
    line = line.slice(0, Math.max(0, max - more.length)).replace(PARTIAL_JWT_AT_END, '[redacted]') + more;
  }
  return line;
}

/** The `message` of a Kubernetes Status body (JSON text or parsed), else the body's first line. */
function statusMessage(body: unknown): string | undefined {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body.length > 4 << 20 ? '' : body); // bodies are bounded by the transport; beyond, the first line only
    } catch {
      const first = body.slice(0, MAX_DESCRIPTION_LENGTH * 4).trim().split('\n')[0];
      return first === '' ? undefined : first;
    }
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const m = (parsed as Record<string, unknown>).message;
    if (typeof m === 'string') return m;
  }
  return undefined;
}

/** The HTTP status of an API error (client-node's ApiException: `code` and `body`), if it is one. */
export function httpStatusOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as Record<string, unknown>).code;
  return typeof code === 'number' && 'body' in e ? code : undefined;
}

const HTTP_REASONS: Record<number, string> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  409: 'conflict',
  422: 'invalid',
  500: 'server error',
  503: 'service unavailable',
};

interface DescribeOptions {
  /**
   * How an API error's status is shown: `code` (`HTTP 403: <message>`, what conditions and logs
   * use, and what the controller matches on) or `reason` (`forbidden: <message>`, the CLI's).
   */
  status?: 'code' | 'reason';
  max?: number;
}

/**
 * One line for any error: the API server's Status message for API errors, the network cause
 * (ECONNREFUSED, certificate problems) for transport errors, the message otherwise. Never a stack
 * or a body dump, at most `max` characters, and anything that looks like a token is redacted.
 */
export function describeError(e: unknown, o: DescribeOptions = {}): string {
  let text: string;
  const status = httpStatusOf(e);
  if (status !== undefined) {
    const msg = statusMessage((e as { body: unknown }).body);
    text = o.status === 'reason' ? `${HTTP_REASONS[status] ?? `HTTP ${status}`}${msg ? `: ${msg}` : ` (HTTP ${status})`}` : `HTTP ${status}${msg ? `: ${msg}` : ''}`;
  } else if (e instanceof Error) {
    const statusCode = (e as { statusCode?: unknown }).statusCode;
    const prefix = typeof statusCode === 'number' && !e.message.includes(`HTTP ${statusCode}`) ? `HTTP ${statusCode} ` : '';
    const message = e.message.slice(0, MAX_DESCRIPTION_LENGTH * 4).trim().split('\n')[0] ?? '';
    const cause = e.cause instanceof Error ? e.cause : undefined;
    const code = (cause as { code?: unknown } | undefined)?.code;
    if (cause && e.message === 'fetch failed') text = typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
    else text = `${prefix}${message}${cause && !message.includes(cause.message) ? `: ${cause.message}` : ''}`;
  } else text = String(e);
  return boundedLine(text, o.max);
}
