import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger, redact } from '../../src/logger.js';

const jwt = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('logger', () => {
  it('redacts secret keys and token-looking strings, deeply', () => {
    const out = redact({ a: { token: 'x', data: { token: 'y' } }, msg: `bearer ${jwt} end`, list: [{ 'ca.crt': 'pem' }] });
    const s = JSON.stringify(out);
    expect(s).not.toContain(jwt);
    expect(s).not.toContain('"x"');
    expect(s).not.toContain('pem');
    expect(s).toContain('bearer [redacted] end');
  });

  it('writes JSON lines without secret material', async () => {
    const lines: string[] = [];
    const stream = new Writable({ write: (c, _e, cb) => { lines.push(String(c)); cb(); } });
    const log = createLogger({ component: 'test', stream }).child({ key: 'ns/imp' });
    log.info('minted', { token: jwt, error: new Error(`failed with ${jwt}`) });
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ component: 'test', key: 'ns/imp', message: 'minted', level: 'info' });
    expect(lines[0]).not.toContain(jwt);
  });
});
