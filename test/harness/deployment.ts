import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { adminKubeConfig, clusterInfo } from './env.js';
import { ManagedProcess } from './process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ContainerSpec {
  name: string;
  command: string[];
  args: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
}

/** A container of the Deployment in a manifest file (relative to the repository root). */
export function manifestContainer(file: string, container?: string): ContainerSpec {
  const docs = parseAllDocuments(readFileSync(path.join(ROOT, file), 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: ContainerSpec[] } } } });
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const containers = deployment?.spec?.template?.spec?.containers ?? [];
  const c = container ? containers.find((x) => x.name === container) : containers[0];
  if (!c) throw new Error(`no container ${container ?? ''} in the Deployment of ${file}`);
  return c;
}

export interface LocalRun {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * How a pod would run `container`, as a local process: `node X.js` becomes
 * `node --import tsx X.ts` (or `node dist/X.js` with `compiled`); `$(VAR)` in args is expanded; env values come from the manifest
 * (literal values) and from `downwardEnv` (what `valueFrom` would give in a pod). `overrides`
 * replace the value of flags the manifest passes (each must exist there); `extra` flags are those
 * only a process outside a pod needs (a kubeconfig instead of in-cluster credentials, loopback addresses).
 * `nodeFlags` replace the manifest's Node/V8 flags (benchmarks comparing runtime settings).
 */
export function localRun(container: ContainerSpec, opts: { downwardEnv: Record<string, string>; overrides?: Record<string, string>; extra?: string[]; compiled?: boolean | string; nodeFlags?: string[] }): LocalRun {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const v = e.value ?? opts.downwardEnv[e.name];
    if (v === undefined) throw new Error(`env ${e.name} of container ${container.name} has no value for a local run`);
    env[e.name] = v;
  }
  const expand = (a: string) => a.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (_, v: string) => env[v] ?? '');
  const args = (container.args ?? []).map(expand);
  for (const [flag, value] of Object.entries(opts.overrides ?? {})) {
    const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i < 0) throw new Error(`the manifest does not pass ${flag} to ${container.name}`);
    args[i] = `${flag}=${value}`;
  }
  const [bin, ...nodeArgs] = container.command;
  const at = nodeArgs.findIndex((a) => a.endsWith('.js'));
  if (bin !== 'node' || at < 0) throw new Error(`unexpected command ${container.command.join(' ')}`);
  const flags = opts.nodeFlags ?? nodeArgs.slice(0, at);
  const script = nodeArgs[at]!;
  const rest = nodeArgs.slice(at + 1);
  // `compiled`: run what the image runs (dist/ from `npm run build`, or the build directory given) instead of the sources.
  const dist = typeof opts.compiled === 'string' ? opts.compiled : path.join(ROOT, 'dist');
  const entry = opts.compiled ? [path.join(dist, script)] : ['--import', 'tsx', path.join(ROOT, script.replace(/\.js$/, '.ts'))];
  return { command: process.execPath, args: [...flags, ...entry, ...rest, ...args, ...(opts.extra ?? [])], env };
}

export function startLocal(name: string, run: LocalRun, logFile: string): ManagedProcess {
  return new ManagedProcess(name, run.command, run.args, logFile, run.env);
}

/**
 * A kubeconfig authenticating as a ServiceAccount of a test cluster with a TokenRequest token:
 * what a pod of that ServiceAccount would get from in-cluster config.
 */
export async function serviceAccountKubeconfig(cluster: string, namespace: string, serviceAccount: string, file: string, expirationSeconds = 3600): Promise<string> {
  const core = adminKubeConfig(cluster).makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({ namespace, name: serviceAccount, body: { spec: { expirationSeconds } } });
  const c = clusterInfo(cluster);
  const kc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: c.server, 'certificate-authority-data': Buffer.from(c.caPem).toString('base64') } }],
    users: [{ name: `${serviceAccount}@${cluster}`, user: { token: tr.status!.token } }],
    contexts: [{ name: cluster, context: { cluster, user: `${serviceAccount}@${cluster}`, namespace } }],
    'current-context': cluster,
  };
  writeFileSync(file, JSON.stringify(kc), { mode: 0o600 });
  return file;
}
