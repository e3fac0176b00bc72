/**
 * A hostile stream of worst-case admissions, for the integration test and the benchmark. Run as
 * a child process (`node --import tsx test/harness/hostile-admissions.ts '<json options>'`) so its
 * own CPU does not sit in the event loop of whoever measures ordinary admissions; it runs until
 * SIGTERM and prints its counts as one JSON line on stdout.
 *
 * Straight to the webhook port (as a pod that can reach it would):
 * - `many-imports`: a review whose pod names 20,000 imports (a 256 KiB annotation);
 * - `missing-imports`: a pod naming 32 imports that do not exist, new names every time (cache misses: API lookups);
 * - `empty-containers`: a body just under the size limit of `{},{},…` containers;
 * - `array-body`: a body just under the size limit that is `[{},{},…]`;
 * - `oversized`: 5 MiB with a Content-Length; `oversized-chunked`: 5 MiB without one;
 * - `malformed`: truncated JSON.
 * Through the API server (dry-run pod creations, as any tenant can): pods naming 20,000 imports
 * and pods naming 32 missing imports.
 */
import { spawn } from 'node:child_process';
import https from 'node:https';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { IMPORT_ANNOTATION } from '../../src/constants.js';

export interface HostileOptions {
  /** The webhook's HTTPS port on 127.0.0.1 (direct requests); none → no direct requests. */
  webhookPort?: number;
  /** kubeconfig, context and namespace for dry-run pod creations through the API server; none → none. */
  api?: { kubeconfigPath: string; context?: string; namespace: string };
  /** Concurrent direct clients, and concurrent API clients. */
  directClients?: number;
  apiClients?: number;
  /** The webhook's body limit (bodies are built just under it). */
  maxBodyBytes?: number;
  /** Only these direct kinds (default: all). */
  kinds?: string[];
}

export type HostileCounts = Record<string, Record<string, number>>;

const MIB = 1024 * 1024;

function review(uid: string, object: unknown): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', namespace: 'hostile', object },
  };
}

export function manyImports(n = 20_000): string {
  return Array.from({ length: n }, (_, i) => `i${i.toString(36)}`).join(',');
}

function pod(annotation: string, extra: Record<string, unknown> = {}) {
  return { metadata: { generateName: 'hostile-', annotations: { [IMPORT_ANNOTATION]: annotation } }, spec: { containers: [{ name: 'c', image: 'busybox' }] }, ...extra };
}

let counter = 0;
function missingNames(): string {
  counter++;
  return Array.from({ length: 32 }, (_, i) => `missing-${process.pid}-${counter}-${i}`).join(',');
}

/** The fixed direct bodies (built once; `missing-imports` is built per request). */
export function hostileBodies(maxBodyBytes = 3.5 * MIB): { name: string; body: () => Buffer; chunked?: boolean }[] {
  const fill = (head: string, tail: string) => {
    const n = Math.floor((maxBodyBytes - head.length - tail.length - 16) / 3);
    return Buffer.from(`${head}${Array(n).fill('{}').join(',')}${tail}`);
  };
  const many = Buffer.from(JSON.stringify(review('many', pod(manyImports()))));
  const [head, tail] = JSON.stringify(review('empty', { spec: { containers: ['FILL'] } })).split('"FILL"') as [string, string];
  const emptyContainers = fill(head, tail);
  const arrayBody = fill('[', ']');
  const oversized = Buffer.alloc(5 * MIB, 0x20);
  const malformed = Buffer.from('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"spec":');
  return [
    { name: 'many-imports', body: () => many },
    { name: 'missing-imports', body: () => Buffer.from(JSON.stringify(review(`missing-${counter}`, pod(missingNames())))) },
    { name: 'empty-containers', body: () => emptyContainers },
    { name: 'array-body', body: () => arrayBody },
    { name: 'oversized', body: () => oversized },
    { name: 'oversized-chunked', body: () => oversized, chunked: true },
    { name: 'malformed', body: () => malformed },
  ];
}

function count(counts: HostileCounts, kind: string, outcome: string): void {
  const k = (counts[kind] ??= {});
  k[outcome] = (k[outcome] ?? 0) + 1;
}

function post(agent: https.Agent, port: number, body: Buffer, chunked: boolean): Promise<string> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (!chunked) headers['content-length'] = body.length;
    const req = https.request({ host: '127.0.0.1', port, path: '/mutate-pods', method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
      res.on('error', () => resolve('error'));
    });
    req.on('error', () => resolve('connection-error'));
    if (chunked) {
      // Written in pieces, as a slow or streaming client would.
      for (let i = 0; i < body.length; i += 256 * 1024) req.write(body.subarray(i, i + 256 * 1024));
      req.end();
    } else req.end(body);
  });
}

/**
 * Starts the stream in a child process at the lowest CPU priority (an attacker's own CPU is on
 * another machine; on a shared test machine its work must not be what slows everyone down).
 * `stop()` ends it and resolves with its counts.
 */
export function startHostileProcess(opts: HostileOptions) {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    os.setPriority(child.pid!, 19);
  } catch {
    // not permitted: run at normal priority
  }
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // The child says when it runs (its SIGTERM handler is in place from then on).
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', () => {
      if (err.includes('hostile stream running')) resolve();
    });
    void exited.then((code) => reject(new Error(`hostile stream exited with ${code} before it ran: ${err.slice(-2000)}`)));
  });
  ready.catch(() => undefined);
  return {
    ready,
    stop: async (): Promise<HostileCounts> => {
      await ready;
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`hostile stream exited with ${code}: ${err.slice(-2000)}`);
      return JSON.parse(out.trim()) as HostileCounts;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Runs until `signal` aborts; resolves with the counts of outcomes by kind. */
export async function runHostile(opts: HostileOptions, signal: AbortSignal): Promise<HostileCounts> {
  const counts: HostileCounts = {};
  const workers: Promise<void>[] = [];
  if (opts.webhookPort !== undefined) {
    const bodies = hostileBodies(opts.maxBodyBytes).filter((b) => !opts.kinds || opts.kinds.includes(b.name));
    const agent = new https.Agent({ keepAlive: true, maxSockets: opts.directClients ?? 4, rejectUnauthorized: false });
    for (let w = 0; w < (opts.directClients ?? 4); w++) {
      workers.push((async () => {
        for (let i = w; !signal.aborted; i++) {
          const b = bodies[i % bodies.length]!;
          const outcome = await post(agent, opts.webhookPort!, b.body(), b.chunked === true);
          if (!signal.aborted) count(counts, `direct ${b.name}`, outcome); // not the requests cut by the stop
        }
      })());
    }
    signal.addEventListener('abort', () => agent.destroy(), { once: true });
  }
  if (opts.api) {
    const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(opts.api.kubeconfigPath);
    if (opts.api.context) kc.setCurrentContext(opts.api.context);
    const core = kc.makeApiClient(CoreV1Api);
    const namespace = opts.api.namespace;
    const many = manyImports();
    for (let w = 0; w < (opts.apiClients ?? 2); w++) {
      workers.push((async () => {
        for (let i = w; !signal.aborted; i++) {
          const kind = i % 2 === 0 ? 'api many-imports' : 'api missing-imports';
          try {
            await core.createNamespacedPod({ namespace, body: pod(kind === 'api many-imports' ? many : missingNames()) as never, dryRun: 'All' });
            if (!signal.aborted) count(counts, kind, 'admitted');
          } catch (e) {
            const code = (e as { code?: number }).code;
            if (!signal.aborted) count(counts, kind, code === undefined ? 'error' : `denied ${code}`);
          }
        }
      })());
    }
  }
  process.stderr.write('hostile stream running\n');
  await Promise.all(workers);
  return counts;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const opts = JSON.parse(process.argv[2] ?? '{}') as HostileOptions;
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  const counts = await runHostile(opts, stop.signal);
  process.stdout.write(`${JSON.stringify(counts)}\n`, () => process.exit(0));
}
