import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Binaries {
  dir: string;
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
}

function fromDir(dir: string): Binaries {
  const b = {
    dir,
    etcd: path.join(dir, 'etcd'),
    kubeApiserver: path.join(dir, 'kube-apiserver'),
    kubeControllerManager: path.join(dir, 'kube-controller-manager'),
    kubectl: path.join(dir, 'kubectl'),
  };
  for (const f of [b.etcd, b.kubeApiserver, b.kubeControllerManager]) {
    if (!existsSync(f)) throw new Error(`control-plane binary ${f} is missing`);
  }
  // kubebuilder assets ship no controller-manager kubectl match; fall back to PATH's kubectl.
  if (!existsSync(b.kubectl)) b.kubectl = 'kubectl';
  return b;
}

/**
 * The control-plane binaries of the default Kubernetes version (test/control-plane/go.mod): from
 * MCSA_K8S_BIN_DIR (set by the test script), else KUBEBUILDER_ASSETS, else built (or taken from
 * the cache) by test/control-plane/build.sh. With `minor` (e.g. `1.37`), those of another
 * supported version (test/control-plane/k8s-<minor>/go.mod), built or taken from the cache.
 */
export function resolveBinaries(minor?: string): Binaries {
  const preset = process.env.MCSA_K8S_BIN_DIR;
  const other = minor !== undefined && minor.replace(/^v/, '') !== defaultMinor();
  if (preset && !other) return fromDir(preset);
  const dir = runBuildScript(path.join(here, '..', 'control-plane', 'build.sh'), other ? [minor] : [], `control-plane build${other ? ` of Kubernetes ${minor}` : ''}`);
  if (!other) process.env.MCSA_K8S_BIN_DIR = dir;
  return fromDir(dir);
}

/**
 * Runs one of the build scripts (test/control-plane/build*.sh, test/tools/build.sh): progress
 * goes to stderr, the result is the last line of stdout (a directory or a binary's path).
 */
export function runBuildScript(script: string, args: string[], what: string): string {
  const r = spawnSync('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status})`);
  return r.stdout.trim().split('\n').pop()!;
}

/** `1.35` for the version test/control-plane/go.mod pins. */
export function defaultMinor(): string {
  return minorOf(kubernetesVersionOf(path.join(here, '..', 'control-plane', 'go.mod')));
}

/** The k8s.io/kubernetes version a control-plane go.mod pins (`v1.35.4`). */
export function kubernetesVersionOf(goMod: string): string {
  const v = /^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)/m.exec(readFileSync(goMod, 'utf8'))?.[1];
  if (!v) throw new Error(`${goMod} pins no k8s.io/kubernetes version`);
  return v;
}

/** `v1.35.4` → `1.35`. */
export function minorOf(version: string): string {
  return version.replace(/^v/, '').split('.').slice(0, 2).join('.');
}

/**
 * Every Kubernetes version the suites can run on, oldest first: the default and one per
 * test/control-plane/k8s-<minor> directory.
 */
export function supportedKubernetesVersions(): string[] {
  const root = path.join(here, '..', 'control-plane');
  const others = readdirSync(root).filter((d) => /^k8s-\d+\.\d+$/.test(d)).map((d) => kubernetesVersionOf(path.join(root, d, 'go.mod')));
  const byMinor = (v: string) => minorOf(v).split('.').map(Number);
  return [kubernetesVersionOf(path.join(root, 'go.mod')), ...others].sort((a, b) => {
    const [x, y] = [byMinor(a), byMinor(b)];
    return x[0]! - y[0]! || x[1]! - y[1]!;
  });
}
