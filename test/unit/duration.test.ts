import { describe, expect, it } from '@jest/globals';
import { parseDuration } from '../../src/duration.js';

describe('parseDuration', () => {
  it.each([
    ['15s', 15_000], ['10m', 600_000], ['1h30m', 5_400_000], ['500ms', 500], ['2', 2_000], ['0.5', 500], ['1m0.5s', 60_500], ['90d', 7_776_000_000], ['1d12h', 129_600_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'abc', '10x', '5s junk', '-1s', '1w', '1 d'])('rejects %j', (text) => {
    expect(() => parseDuration(text, '--lease-duration')).toThrow(/^invalid --lease-duration/);
  });
});
