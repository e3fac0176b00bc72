// Shared set-up for the config library's unit tests: temporary mount roots and kubeconfigs, and
// import contents whose every file names its generation (so a mix of generations is detectable).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { firstValueFrom, type Observable, ReplaySubject, filter, timeout } from 'rxjs';
import { stringify } from 'yaml';
import type { ConfigAndNamespace } from '../../../src/config/index.js';
import { MOUNT_ROOT } from '../../../src/constants.js';
import { buildKubeconfig } from '../../../src/secret.js';
import { writeSecretVolume } from '../../harness/kubelet-volume.js';

export const caPem = (gen: number) => `-----BEGIN CERTIFICATE-----\nR0VO${gen}\n-----END CERTIFICATE-----\n`;
export const serverOf = (name: string, gen: number) => `https://gen-${gen}.${name}.test:6443`;
export const namespaceOf = (gen: number) => `ns-${gen}`;
export const tokenOf = (name: string, gen: number) => `token-${name}-${gen}`;

/** The five files of an import's Secret at generation `gen`, with `tokenFile` at the pod path. */
export function importData(name: string, gen = 1): Record<string, string> & { config: string } {
  return {
    config: buildKubeconfig({
      name,
      server: serverOf(name, gen),
      ca: { pem: caPem(gen) },
      namespace: namespaceOf(gen),
      auth: { tokenFile: `${MOUNT_ROOT}/${name}/token` },
    }),
    token: tokenOf(name, gen),
    namespace: namespaceOf(gen),
    server: serverOf(name, gen),
    'ca.crt': caPem(gen),
  };
}

/** Mounts (or updates) import `name` at generation `gen` under `root`, the kubelet's way. */
export function mountImport(root: string, name: string, gen = 1): Promise<void> {
  return writeSecretVolume(path.join(root, name), importData(name, gen));
}

/** A temporary directory and its removal. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `mcsa-config-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A scratch mount root and HOME with the environment pointed at them and cleared of what would
 * leak in from the machine (KUBECONFIG, in-cluster variables, POD_NAMESPACE). `cleanup` runs
 * last first; `restore()` puts the environment back and runs it.
 */
export async function isolatedConfigEnv(prefix: string, mountRootEnv: string): Promise<{ root: string; home: string; cleanup: (() => Promise<void> | void)[]; restore: () => Promise<void> }> {
  const saved = { ...process.env };
  const r = await tempDir(`${prefix}root`);
  const h = await tempDir(`${prefix}home`);
  const cleanup: (() => Promise<void> | void)[] = [r.remove, h.remove];
  process.env[mountRootEnv] = r.dir;
  process.env.HOME = h.dir;
  for (const v of ['KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'POD_NAMESPACE']) delete process.env[v];
  return {
    root: r.dir,
    home: h.dir,
    cleanup,
    restore: async () => {
      process.env = saved;
      for (const c of cleanup.reverse()) await c();
    },
  };
}

/** A kubeconfig with one context per entry (cluster and user named after it), token inline. */
export function kubeconfigYaml(contexts: { name: string; namespace?: string; server?: string }[], current?: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: contexts.map((c) => ({ name: c.name, cluster: { server: c.server ?? `https://${c.name}.kube.test:6443` } })),
    users: contexts.map((c) => ({ name: c.name, user: { token: `kc-token-${c.name}` } })),
    contexts: contexts.map((c) => ({ name: c.name, context: { cluster: c.name, user: c.name, ...(c.namespace ? { namespace: c.namespace } : {}) } })),
    ...(current ? { 'current-context': current } : {}),
  });
}

export async function writeKubeconfig(dir: string, file: string, yaml: string): Promise<string> {
  const p = path.join(dir, file);
  await writeFile(p, yaml);
  return p;
}

/** The Authorization header a KubeConfig would send now. */
export async function authorization(kc: KubeConfig): Promise<string | undefined> {
  const opts: { headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(opts);
  return opts.headers?.Authorization;
}

/** The generation named by a server URL written by {@link importData}. */
export function generationOfServer(server: string | undefined): number {
  const m = /^https:\/\/gen-(\d+)\./.exec(server ?? '');
  if (!m) throw new Error(`not a fixture server URL: ${server}`);
  return Number(m[1]);
}

/** Replays everything `source` emits, for tests that wait for a particular value with a deadline. */
export function record<T>(source: Observable<T>) {
  const values: T[] = [];
  const replay = new ReplaySubject<T>();
  let error: unknown;
  let errored = false;
  const subscription = source.subscribe({
    next: (v) => {
      values.push(v);
      replay.next(v);
    },
    error: (e: unknown) => {
      error = e;
      errored = true;
      replay.error(e);
    },
  });
  return {
    values,
    get error() {
      return error;
    },
    get errored() {
      return errored;
    },
    /** The first value (from the start) matching `predicate`, within `ms`. */
    waitFor: (predicate: (v: T) => boolean, ms = 2000, what = 'a matching emission') =>
      firstValueFrom(
        replay.pipe(
          filter(predicate),
          timeout({ first: ms, with: () => Promise.reject(new Error(`no ${what} within ${ms} ms (${values.length} emitted)`)) }),
        ),
      ),
    /** Resolves with the error the source ends with, within `ms`. */
    waitForError: (ms = 3000) =>
      new Promise<unknown>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no error within ${ms} ms (${values.length} emitted)`)), ms);
        replay.subscribe({ error: (e: unknown) => (clearTimeout(t), resolve(e)), complete: () => (clearTimeout(t), reject(new Error('completed'))) });
      }),
    stop: () => subscription.unsubscribe(),
  };
}

export const gen = (c: ConfigAndNamespace) => generationOfServer(c.kubeConfig.getCurrentCluster()?.server);

/** Server, CA and namespace of one emission come from one generation; the token is never older. */
export async function assertConsistent(c: ConfigAndNamespace, name: string): Promise<number> {
  const g = gen(c);
  expect(c.namespace).toBe(`ns-${g}`);
  expect(Buffer.from(c.kubeConfig.getCurrentCluster()?.caData ?? '', 'base64').toString()).toContain(`R0VO${g}\n`);
  const tokenGen = Number(/^Bearer token-[a-z0-9-]+?-(\d+)$/.exec((await authorization(c.kubeConfig)) ?? '')?.[1]);
  expect(tokenGen).toBeGreaterThanOrEqual(g);
  expect(c.source).toMatchObject({ kind: 'import', name });
  return g;
}

/** The generation a fixture file was written for (each file spells it differently). */
export function generationInFile(key: string, text: string): number {
  const pattern = { config: /gen-(\d+)\./, server: /gen-(\d+)\./, token: /^token-c-(\d+)$/, namespace: /^ns-(\d+)$/, 'ca.crt': /R0VO(\d+)\n/ }[key];
  const m = pattern?.exec(text);
  if (!m) throw new Error(`unexpected file ${key} in a snapshot`);
  return Number(m[1]);
}

export async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await p;
  return { value, ms: performance.now() - t0 };
}
