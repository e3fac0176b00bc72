// The two reads `kubemcsa federate` makes of a target's ServiceAccount issuer: its discovery
// document through the API with the kubeconfig's credentials (what is the issuer?), and the
// discovery and JWKS URLs with no credentials at all, trusting only the given CA (what a source
// API server will see when it fetches them).
import { request } from 'node:https';
import { WellKnownApi, type KubeConfig } from '@kubernetes/client-node';
import { decodeOrThrow } from '../src/api/decode.js';
import { OpenIdDiscovery, type AnonymousAnswer } from '../src/federation/discovery.js';
import { apiClient } from './kube-call.js';

/** A discovery document or key set is a few KiB; anything past this is not one. */
const MAX_BODY_BYTES = 1024 * 1024;

/** `/.well-known/openid-configuration` of `kc`'s cluster, read with its credentials (under the caller's withDeadline). */
export async function readIssuerDiscovery(kc: KubeConfig, what: string): Promise<OpenIdDiscovery> {
  const text: unknown = await apiClient(kc, WellKnownApi).getServiceAccountIssuerOpenIDConfiguration();
  let raw: unknown;
  try {
    raw = typeof text === 'string' ? JSON.parse(text) : text;
  } catch {
    throw new Error(`the discovery document of ${what} is not JSON`);
  }
  return decodeOrThrow(OpenIdDiscovery, raw, `discovery document of ${what}`);
}

/**
 * GET `url` with no credentials, trusting `caPem` only (the system roots when undefined), under a
 * deadline. Never throws for the network: an unreachable URL or a TLS failure is an answer.
 */
export function anonymousGet(url: string, caPem: string | undefined, timeoutMs: number): Promise<AnonymousAnswer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: AnonymousAnswer) => {
      if (!settled) {
        settled = true;
        resolve(a);
      }
    };
    let req;
    try {
      req = request(url, { method: 'GET', headers: { accept: 'application/json, application/jwk-set+json' }, ...(caPem !== undefined ? { ca: caPem } : {}), signal: AbortSignal.timeout(timeoutMs) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            res.destroy();
            done({ kind: 'unreachable', error: `answer larger than ${MAX_BODY_BYTES} bytes` });
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => done({ kind: 'http', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e) => done({ kind: 'unreachable', error: e.message }));
      });
    } catch (e) {
      done({ kind: 'unreachable', error: e instanceof Error ? e.message : String(e) });
      return;
    }
    req.on('error', (e) => done({ kind: 'unreachable', error: e.name === 'AbortError' || e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : e.message }));
    req.end();
  });
}
