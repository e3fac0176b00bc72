// Reading HTTP response bodies from other servers with a bound: a source cluster (or anything
// posing as one) cannot make this process buffer an unbounded LIST, watch line or error body.

/** A response (or one watch event) larger than its bound: the request was aborted. */
class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';
}

/** Default bounds on what is read from a source cluster. */
export const RESPONSE_LIMITS = {
  /** One LIST page (the controller asks for pages of 500 objects). */
  listBytes: 64 * 1024 * 1024,
  /** One watch event line (etcd stores objects of at most 1.5 MiB; a line wraps one object). */
  eventBytes: 8 * 1024 * 1024,
  /** A non-2xx body: only its Status message is used. */
  errorBytes: 64 * 1024,
  /** Any other API response (TokenRequest, a Secret, a status write's answer). */
  callBytes: 16 * 1024 * 1024,
} as const;

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB` : n >= 1024 ? `${Math.round(n / 1024)} KiB` : `${n} bytes`;
}

/**
 * The body as UTF-8 text, reading at most `max` bytes. Beyond, `fail` cancels the stream and
 * throws ResponseTooLargeError; `truncate` cancels it and returns the first `max` bytes (for error
 * bodies, of which only a message is kept).
 */
export async function readAtMost(stream: ByteStream | null, max: number, what: string, onLarger: 'fail' | 'truncate'): Promise<string> {
  return (await readBytesAtMost(stream, max, what, onLarger)).toString('utf8');
}

/** A body: a web stream (fetch) or a Node stream (node:http), both read chunk by chunk. */
type ByteStream = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** The chunks of a body; leaving early (break, throw) cancels the rest of it. */
async function* chunksOf(stream: ByteStream): AsyncGenerator<Uint8Array> {
  // A Node stream's iterator destroys it when left early.
  if (!('getReader' in stream)) return yield* stream;
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** As `readAtMost`, the bytes. */
export async function readBytesAtMost(stream: ByteStream | null, max: number, what: string, onLarger: 'fail' | 'truncate'): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const value of chunksOf(stream)) {
    size += value.byteLength;
    if (size > max) {
      if (onLarger === 'fail') throw new ResponseTooLargeError(`${what}: response larger than ${formatBytes(max)}; aborted`);
      chunks.push(value.subarray(0, value.byteLength - (size - max)));
      break;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * The lines of a streamed body (watch events are newline-delimited JSON), none longer than `max`
 * bytes: a longer one cancels the stream and throws ResponseTooLargeError. `onData` runs on every
 * chunk (an inactivity timer).
 */
export async function* boundedLines(stream: ByteStream | null, max: number, what: string, onData: () => void = () => {}): AsyncGenerator<string> {
  if (!stream) return;
  const tooLarge = () => new ResponseTooLargeError(`${what}: an event larger than ${formatBytes(max)}; aborted`);
  let pending: Buffer[] = [];
  let pendingSize = 0;
  for await (const value of chunksOf(stream)) {
    onData();
    let chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a)) {
      if (pendingSize + nl > max) throw tooLarge();
      const line = Buffer.concat([...pending, chunk.subarray(0, nl)]).toString('utf8');
      pending = [];
      pendingSize = 0;
      chunk = chunk.subarray(nl + 1);
      if (line.trim() !== '') yield line;
    }
    pendingSize += chunk.byteLength;
    if (pendingSize > max) throw tooLarge();
    if (chunk.byteLength > 0) pending.push(Buffer.from(chunk)); // a copy: the stream may reuse its buffer
  }
  const rest = Buffer.concat(pending).toString('utf8');
  if (rest.trim() !== '') yield rest;
}
