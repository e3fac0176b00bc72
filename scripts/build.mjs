// npm run build [-- --outDir DIR]: compiles src/, streams/ and cli/ (tsconfig.build.json) into a
// clean dist/ (or DIR), keeping the repository layout: DIR/src/config/index.js (the library),
// DIR/streams/{controller,webhook}/main.js (the Deployments' commands), DIR/cli/kubemcsa.js.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const i = args.indexOf('--outDir');
const outDir = path.resolve(root, i >= 0 && args[i + 1] ? args[i + 1] : 'dist');
if (outDir === root || !outDir.startsWith(root + path.sep)) {
  console.error(`build: --outDir must be a directory inside ${root} (node_modules is resolved from there), got ${outDir}`);
  process.exit(2);
}
const started = Date.now();
rmSync(outDir, { recursive: true, force: true });
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', outDir], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
console.error(`build: ${path.relative(root, outDir)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
