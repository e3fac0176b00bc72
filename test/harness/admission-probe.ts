/**
 * Times ordinary pod creations through the API server, as a tenant's lean client sees them: a
 * child process of its own (`node --import tsx test/harness/admission-probe.ts '<json options>'`),
 * one keep-alive HTTPS connection, dry-run creations in turn with and without the import
 * annotation. What it measures is the API server and the webhook, not the measuring process: a
 * Jest worker's garbage collector and client-node's object serialisation add pauses of their own
 * to a figure taken in the test's event loop.
 *
 * It prints one JSON line on stdout (latencies in ms, failures with their reason, no Secret data:
 * dry-run pods only) and exits.
 */
import { spawn } from 'node:child_process';
import https from 'node:https';
import { fileURLToPath } from 'node:url';

export interface ProbeOptions {
  kubeconfigPath: string;
  context?: string;
  namespace: string;
  /** The annotation an ordinary annotated pod carries, and the volume the webhook must add for it. */
  annotation: { key: string; value: string };
  expectVolume: string;
  /** Measured pairs (one annotated, one un-annotated creation each), after `warmup` unmeasured pairs. */
  pairs: number;
  warmup?: number;
  /** Keep measuring until at least this long has passed (ms), even once `pairs` are done. */
  minDurationMs?: number;
}

export interface ProbeResult {
  annotated: number[];
  bare: number[];
  failures: string[];
}

interface Sent {
  status: number;
  body: string;
}

async function run(opts: ProbeOptions): Promise<ProbeResult> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  if (opts.context) kc.setCurrentContext(opts.context);
  const server = new URL(kc.getCurrentCluster()!.server);
  const tlsOpts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(tlsOpts);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: tlsOpts.ca, cert: tlsOpts.cert, key: tlsOpts.key });
  const path = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods?dryRun=All`;
  const spec = { containers: [{ name: 'app', image: 'busybox' }] };
  const annotatedBody = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'ordinary-', annotations: { [opts.annotation.key]: opts.annotation.value } }, spec });
  const bareBody = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'bare-' }, spec });

  const send = (body: string): Promise<Sent> =>
    new Promise((resolve, reject) => {
      const req = https.request(
        { host: server.hostname, port: server.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body), ...(tlsOpts.headers ?? {}) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', reject);
      req.end(body);
    });

  /** One creation; its latency, or the reason it failed. */
  const create = async (annotated: boolean): Promise<number | string> => {
    const t0 = performance.now();
    try {
      const r = await send(annotated ? annotatedBody : bareBody);
      const ms = performance.now() - t0;
      if (r.status !== 201) return `${annotated ? 'annotated' : 'un-annotated'} pod: HTTP ${r.status}: ${r.body.slice(0, 300)}`;
      if (annotated) {
        const pod = JSON.parse(r.body) as { spec?: { volumes?: Array<{ name: string }> } };
        if (!(pod.spec?.volumes ?? []).some((v) => v.name === opts.expectVolume)) return `annotated pod admitted without volume ${opts.expectVolume}`;
      }
      return ms;
    } catch (e) {
      return `${annotated ? 'annotated' : 'un-annotated'} pod: ${(e as Error).message}`;
    }
  };

  const out: ProbeResult = { annotated: [], bare: [], failures: [] };
  for (let i = 0; i < (opts.warmup ?? 0); i++) {
    await create(true);
    await create(false);
  }
  const t0 = performance.now();
  while (out.annotated.length + out.failures.length < opts.pairs || performance.now() - t0 < (opts.minDurationMs ?? 0)) {
    for (const annotated of [true, false]) {
      const r = await create(annotated);
      if (typeof r === 'string') out.failures.push(r);
      else (annotated ? out.annotated : out.bare).push(r);
    }
  }
  agent.destroy();
  return out;
}

/** Runs the probe in a child process at normal priority; resolves with its result. */
export function runAdmissionProbe(opts: ProbeOptions): { result: Promise<ProbeResult>; kill: () => void } {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const result = new Promise<ProbeResult>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`admission probe exited with ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim()) as ProbeResult);
      } catch (e) {
        reject(new Error(`admission probe printed no result (${(e as Error).message}): ${err.slice(-2000)}`));
      }
    });
  });
  return {
    result,
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await run(JSON.parse(process.argv[2] ?? '{}') as ProbeOptions);
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}
