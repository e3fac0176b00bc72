// Pieces shared by the controller benchmarks (bench:controller, bench:fleet) that drive the
// clusters: building the project, bulk creation with kubectl, waiting for the controller to be idle.
// What they measure with is in measure.ts, the bare client in bare-client.ts; the controller's
// process under its guard is found with peer.ts's childPid.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Waits until the controller has nothing queued or running (its workqueue metrics) and `also`
 * holds, three polls in a row.
 */
export async function waitUntilIdle(
  ctrl: { metric(name: string, labels?: string): Promise<number | undefined> },
  what: string,
  timeoutMs: number,
  intervalMs: number,
  also: () => boolean | Promise<boolean> = () => true,
): Promise<void> {
  let calm = 0;
  await waitFor(what, async () => {
    const ok = await also();
    const busy = ((await ctrl.metric('workqueue_depth')) ?? 0) + ((await ctrl.metric('controller_runtime_active_workers')) ?? 0);
    calm = ok && busy === 0 ? calm + 1 : 0;
    return calm >= 3;
  }, timeoutMs, intervalMs);
}

/** Measure what the image runs: the compiled controller (`npm run build`, without the CLI's executables). */
export function buildProject(): void {
  const built = spawnSync('npm', ['run', 'build', '--', '--no-executables'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) throw new Error('npm run build failed');
}

/** Creates many objects in cluster1 with `kubectl apply --server-side`, 500 to a file. */
export async function createBulk(kubeconfigPath: string, items: object[]): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-bench-'));
  try {
    for (let start = 0; start < items.length; start += 500) {
      const file = path.join(dir, `items-${start}.yaml`);
      writeFileSync(file, stringify({ apiVersion: 'v1', kind: 'List', items: items.slice(start, start + 500) }));
      const r = await kubectl(kubeconfigPath, ['--context', 'cluster1', 'apply', '--server-side', '-f', file]);
      if (r.code !== 0) throw new Error(`creating objects failed: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

