// npm run build [-- --outDir DIR]: compiles src/, streams/ and cli/ (tsconfig.build.json) into a
// clean dist/ (or DIR), keeping the repository layout: DIR/src/config/index.js (the library),
// DIR/streams/{controller,webhook}/main.js (the Deployments' commands), DIR/cli/kubemcsa.js.
// The process entry points (the controller, the webhook, kubemcsa) are then replaced in place by
// bundles of themselves and everything they import (docs/adr/0014-bundled-controller.md, 0019):
// one module instead of ~2,000 (client-node's generated APIs and models), which takes about
// 30 MiB off the controller's resident memory and starts faster; and the servers' and the CLI's
// dependencies (express, winston, prom-client, x509, commander) live in the bundles, so the npm
// package's library users never install them. The library (dist/src/config) stays unbundled.
// Last, kubemcsa as single-file executables for linux-x64 and linux-arm64 in DIR/bin
// (scripts/executables.mjs) and the krew plugin `mcsa` made of them in DIR/krew (scripts/krew.mjs;
// neither is in the npm package); `--no-executables` skips both.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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

/** Process entry points bundled in place (same path, so the Deployments' commands are unchanged). */
const BUNDLED = ['streams/controller/main.js', 'streams/webhook/main.js', 'cli/kubemcsa.js'];

/**
 * undici, loaded on first use instead of at start. client-node's config module imports it at its
 * top level for the dispatchers of its generated clients and its watch; the controller calls
 * neither (its calls and watches go through streams/kube-http.ts), yet evaluating undici's 0.9 MiB
 * at start cost about 2.5 MiB of resident memory. The bundle gets a module with undici's export
 * names as getters that require the real undici the first time one is read.
 */
const require = createRequire(import.meta.url);
const undiciExports = Object.keys(require('undici'));
const lazyUndici = {
  name: 'lazy-undici',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, (a) => (a.namespace === 'lazy-undici' ? undefined : { path: 'undici', namespace: 'lazy-undici' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-undici' }, () => ({
      contents: [
        'let real;',
        "const load = () => (real ??= require('undici'));",
        `for (const k of ${JSON.stringify(undiciExports)}) Object.defineProperty(module.exports, k, { enumerable: true, get: () => load()[k] });`,
      ].join('\n'),
      loader: 'js',
      resolveDir: root,
    }));
  },
};

/**
 * client-node's modules marked free of side effects, so a bundle keeps only the ones its code
 * reaches. Without it, importing KubeConfig from the package's index evaluates every generated API
 * and all ~1,000 generated model classes (the index re-exports them, and esbuild must assume any
 * module's top level matters): about 9 MiB of resident memory in a process that never calls
 * them. What this drops is exactly what nothing imports (a generated API a bundle does use still
 * brings its serializer and the models); client-node's modules only declare things at their top
 * level. Measured and explained in docs/adr/0014-bundled-controller.md.
 */
const clientNodeWithoutSideEffects = {
  name: 'client-node-side-effect-free',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (a) => {
      if (a.pluginData?.resolved || !(a.importer.includes(`${path.sep}@kubernetes${path.sep}client-node${path.sep}`) || a.path.startsWith('@kubernetes/client-node'))) return undefined;
      const r = await b.resolve(a.path, { resolveDir: a.resolveDir, kind: a.kind, importer: a.importer, pluginData: { resolved: true } });
      return r.errors.length === 0 && r.path.includes(`${path.sep}@kubernetes${path.sep}client-node${path.sep}dist${path.sep}`) ? { ...r, sideEffects: false } : r;
    });
  },
};
for (const entry of BUNDLED) {
  const file = path.join(outDir, entry);
  const result = await build({
    entryPoints: [file],
    outfile: file,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    // Whitespace and syntax only: identifiers stay, so stack traces and logs still name functions.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    // Licence comments go to main.js.LEGAL.txt beside it. Kept inline, one of them (a name with
    // "ä") made the source non-ASCII, and V8 then holds the whole 3.7 MB source as a two-byte
    // string: 3.7 MB more resident memory for a comment (see the ASCII check below).
    legalComments: 'linked',
    charset: 'ascii',
    // Bundled CommonJS dependencies call require() for Node's built-ins.
    banner: { js: "import { createRequire as __mcsaCreateRequire } from 'node:module'; const require = __mcsaCreateRequire(import.meta.url);" },
    logLevel: 'warning',
    metafile: true,
    plugins: [clientNodeWithoutSideEffects, lazyUndici],
  });
  // esbuild escapes non-ASCII in code (charset ascii), not in comments it keeps: check it all.
  const text = readFileSync(file);
  const at = text.findIndex((b) => b > 0x7f);
  if (at >= 0) {
    const line = text.subarray(0, at).toString('latin1').split('\n').length;
    console.error(`build: ${entry} has a non-ASCII byte at line ${line}; V8 would keep the whole bundle as a two-byte string (twice its size in memory). Find what esbuild copied verbatim (a comment) and drop or escape it.`);
    process.exit(1);
  }
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.error(`build: bundled ${entry} (${Object.keys(result.metafile.inputs).length} modules, ${(bytes / 1024 / 1024).toFixed(1)} MiB with its source map)`);
}
// What the bundles now hold is dead weight in dist/streams and dist/cli (modules importing
// packages a library user does not install): only the bundles, their maps and licence files stay.
const kept = new Set(BUNDLED.flatMap((e) => [e, `${e}.map`, `${e}.LEGAL.txt`]).map((e) => path.join(outDir, e)));
for (const dir of ['streams', 'cli']) {
  for (const f of readdirSync(path.join(outDir, dir), { recursive: true, withFileTypes: true })) {
    const full = path.join(f.parentPath, f.name);
    if (f.isFile() && !kept.has(full)) rmSync(full);
  }
  for (const f of readdirSync(path.join(outDir, dir), { recursive: true, withFileTypes: true }).reverse()) {
    const full = path.join(f.parentPath, f.name);
    if (f.isDirectory() && readdirSync(full).length === 0) rmSync(full, { recursive: true });
  }
}
// kubemcsa as single-file executables (scripts/executables.mjs) into <outDir>/bin, and the krew
// plugin made of them (scripts/krew.mjs) into <outDir>/krew, unless told not to.
if (!args.includes('--no-executables')) {
  for (const script of ['executables.mjs', 'krew.mjs']) {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', script), '--outDir', outDir], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}
console.error(`build: ${path.relative(root, outDir)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
