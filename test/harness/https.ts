import https from 'node:https';

export interface TlsClient {
  caPem: string;
  certPem?: string;
  keyPem?: string;
}

/** One HTTPS GET; resolves with the status and body, never throws on HTTP errors. */
export function httpsGet(url: string, tls: TlsClient, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, timeout: timeoutMs, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passes; the error names `what`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: last error: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Thrown from a `waitFor` check to stop waiting at once (the thing waited on cannot happen). */
export class GiveUp extends Error {}
