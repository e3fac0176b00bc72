import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { kubeconfigFor, type ClusterInfo } from './cluster.js';
import { readClusterSetInfo, type ClusterSetInfo } from './clusters.js';

/** The clusters started by Jest's global setup (or reused from a running sandbox). */
export function testClusters(): ClusterSetInfo {
  const file = process.env.MCSA_TEST_CLUSTERS;
  if (!file) throw new Error('MCSA_TEST_CLUSTERS is not set: run integration tests through Jest (global setup starts the clusters)');
  return readClusterSetInfo(file);
}

export function clusterInfo(name: string): ClusterInfo {
  const c = testClusters().clusters.find((x) => x.name === name);
  if (!c) throw new Error(`no test cluster named ${name}`);
  return c;
}

/** An admin KubeConfig for one cluster. */
export function adminKubeConfig(name: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(stringify(kubeconfigFor([clusterInfo(name)])));
  return kc;
}

/** A short random suffix for names a test creates. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** Creates a namespace in `cluster` and returns it with a cleanup that deletes it. */
export async function createTestNamespace(cluster: string, prefix: string, labels: Record<string, string> = {}) {
  const core = adminKubeConfig(cluster).makeApiClient(CoreV1Api);
  const name = uniqueName(prefix);
  await core.createNamespace({ body: { metadata: { name, labels } } });
  return {
    name,
    delete: async () => {
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (killed after `timeoutMs`), with `input` on its stdin when given. */
export function runProgram(bin: string, args: string[], input?: string, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Runs the control plane's matching kubectl with the given kubeconfig and arguments. */
export function kubectl(kubeconfigPath: string, args: string[], input?: string): Promise<RunResult> {
  return runProgram(testClusters().kubectl, [`--kubeconfig=${kubeconfigPath}`, ...args], input);
}
