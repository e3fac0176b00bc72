import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
 * The control-plane binaries: from MCSA_K8S_BIN_DIR (set by the test script), else
 * KUBEBUILDER_ASSETS, else built (or taken from the cache) by test/control-plane/build.sh.
 */
export function resolveBinaries(): Binaries {
  const preset = process.env.MCSA_K8S_BIN_DIR;
  if (preset) return fromDir(preset);
  const r = spawnSync('bash', [path.join(here, '..', 'control-plane', 'build.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`control-plane build failed (exit ${r.status})`);
  const dir = r.stdout.trim().split('\n').pop()!;
  process.env.MCSA_K8S_BIN_DIR = dir;
  return fromDir(dir);
}
