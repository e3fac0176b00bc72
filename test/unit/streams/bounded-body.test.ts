import { describe, expect, it } from '@jest/globals';
import { boundedLines, readAtMost } from '../../../streams/bounded-body.js';

/** A body delivered in the given chunks; records whether the reader cancelled it. */
function body(chunks: (string | Uint8Array)[]) {
  const state = { cancelled: false, pulled: 0 };
  const queue = chunks.map((c) => (typeof c === 'string' ? new TextEncoder().encode(c) : c));
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = queue.shift();
      state.pulled++;
      if (next) controller.enqueue(next);
      else controller.close();
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

async function all(gen: AsyncGenerator<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of gen) out.push(l);
  return out;
}

describe('bounded response bodies', () => {
  it('reads a body within its bound whole', async () => {
    expect(await readAtMost(body(['{"a":', '1}']).stream, 7, 'list x', 'fail')).toBe('{"a":1}');
  });

  it('decodes a body whose multi-byte characters are split across chunks, and a truncation inside one', async () => {
    const text = '{"name":"❄ schnée ✓"}';
    const bytes = new TextEncoder().encode(text);
    const oneByteEach = () => Array.from(bytes, (b) => new Uint8Array([b]));
    expect(await readAtMost(body(oneByteEach()).stream, 1024, 'list x', 'fail')).toBe(text);
    // 10 bytes end inside the 3-byte snowflake: what is kept never invents a character.
    expect(await readAtMost(body(oneByteEach()).stream, 10, 'e', 'truncate')).toBe('{"name":"\uFFFD');
  });

  it('aborts a body over its bound without reading the rest, saying what and how much', async () => {
    const { stream, state } = body(['x'.repeat(600), 'y'.repeat(600), ...Array.from({ length: 1000 }, () => 'z'.repeat(1000))]);
    await expect(readAtMost(stream, 1024, 'list /api/v1/serviceaccounts', 'fail')).rejects.toMatchObject({ name: 'ResponseTooLargeError', message: 'list /api/v1/serviceaccounts: response larger than 1 KiB; aborted' });
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBeLessThan(5);
  });

  it('keeps the first bytes of an error body over its bound', async () => {
    const { stream, state } = body(['abc', 'defgh', 'ijk']);
    expect(await readAtMost(stream, 6, 'e', 'truncate')).toBe('abcdef');
    expect(state.cancelled).toBe(true);
  });

  it('splits watch lines across chunks, multi-byte characters included', async () => {
    const snow = '{"type":"ADDED","object":{"n":"❄"}}';
    const bytes = new TextEncoder().encode(`${snow}\n{"type":"DELETED"}\n`);
    const chunks = Array.from(bytes, (b) => new Uint8Array([b])); // one byte at a time
    expect(await all(boundedLines(body(chunks).stream, 100, 'w'))).toEqual([snow, '{"type":"DELETED"}']);
  });

  it('aborts a watch line over its bound, with or without a newline in sight', async () => {
    const endless = body(['{"type":"ADDED","object":{"x":"', ...Array.from({ length: 10_000 }, () => 'a'.repeat(1000))]);
    await expect(all(boundedLines(endless.stream, 64 * 1024, 'watch /api/v1/serviceaccounts'))).rejects.toThrow('watch /api/v1/serviceaccounts: an event larger than 64 KiB; aborted');
    expect(endless.state.cancelled).toBe(true);
    expect(endless.state.pulled).toBeLessThan(100);
    const oneChunk = body([`${'b'.repeat(2000)}\n{"ok":1}\n`]);
    await expect(all(boundedLines(oneChunk.stream, 1024, 'w'))).rejects.toMatchObject({ name: 'ResponseTooLargeError' });
  });
});
