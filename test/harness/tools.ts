import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const built = new Map<string, string>();

/**
 * The path of a test tool (a directory of test/tools: helm, promtool, …) built from its Go module
 * by test/tools/build.sh, or taken from the cache (instant). The first build prints progress on
 * stderr and can take minutes: scripts/test.sh builds every tool before the tests start.
 */
export function toolBinary(name: string): string {
  const known = built.get(name);
  if (known) return known;
  const r = spawnSync('bash', [path.join(here, '..', 'tools', 'build.sh'), name], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`building test tool ${name} failed (exit ${r.status}); see the [tools:${name}] lines above`);
  const bin = r.stdout.trim().split('\n').pop()!;
  built.set(name, bin);
  return bin;
}
