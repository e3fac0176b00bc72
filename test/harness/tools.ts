import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBuildScript } from './binaries.js';

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
  const bin = runBuildScript(path.join(here, '..', 'tools', 'build.sh'), [name], `building test tool ${name} (see the [tools:${name}] lines above)`);
  built.set(name, bin);
  return bin;
}
