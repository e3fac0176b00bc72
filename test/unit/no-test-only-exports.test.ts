// Production code holds no test scaffolding (issue #13): every name exported from src/, streams/
// or cli/ is used by some other non-test file. A name only tests use belongs under test/; a name
// only its own file uses is not exported; a name nobody uses is deleted. The library's public entry
// points (package.json "main"/"exports") are API by design and are not checked. And the runtime
// dependencies (with the peer dependencies) are exactly the packages the library loads; whatever
// else production code loads is a devDependency, bundled into the entry points (ADR 0019).
//
// The scan is textual, by design fast and dependency-free: comments are blanked, then each file is
// cut into identifiers, and a name counts as used by a file that contains it as a whole word
// (strings included: a name spelled in a message or an import path counts). It can miss an unused
// export whose name is a common word used elsewhere; it does not flag a used one.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where exports are checked. */
const PRODUCTION_DIRS = ['src', 'streams', 'cli'];
/** Every non-test file whose use of a name counts (build scripts and examples are not tests). */
const CONSUMER_DIRS = [...PRODUCTION_DIRS, 'scripts', 'examples'];

/**
 * Exports kept although no other non-test file names them, each with its reason. Keep it short:
 * the test fails on an entry that is no longer needed.
 */
const ALLOWED: Record<string, string> = {
  // client-go's rate limiters: defaultControllerRateLimiter composes them; WorkQueue takes any
  // RateLimiter, and its tests configure these (base delay, cap, bucket size).
  'streams/ratelimit.ts:exponentialRateLimiter': 'client-go rate limiter',
  'streams/ratelimit.ts:tokenBucketRateLimiter': 'client-go rate limiter',
  'streams/ratelimit.ts:maxOfRateLimiters': 'client-go rate limiter',
  // startLeaderElection runs the elector over the API server's Leases; its tests run it over an
  // in-memory Lease, which signals a conflict as the real client does.
  'streams/leader.ts:LeaseElector': 'elector over an injected Lease client',
  'streams/leader.ts:LeaseConflict': 'what a Lease client throws on a conflict',
  // The watch cache's pure fold: SharedCache runs it, marble tests check it on its own.
  'streams/cache.ts:applyWatchEvent': 'pure fold of the watch cache',
  // The body reader's token count, checked exactly on its own (through the app only over/under the limit shows).
  'streams/webhook/app.ts:countJsonTokens': 'token count of the body reader',
  // decide() plans each TokenRequest with it; the controller benchmark's baseline mints tokens the same way.
  'src/controller/decide.ts:tokenRequestFor': 'TokenRequest plan, shared with the controller benchmark',
};

/** Blanks comments; strings, template literals and regular expressions are kept as written. */
function stripComments(src: string): string {
  let out = '';
  let i = 0;
  let depth = 0; // `{` nesting in code
  const templates: number[] = []; // the depth at which each open `${` of a template resumes its text
  let inTemplate = false;
  let prev = ''; // the last code character written (not space), to tell a regular expression from a division
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (inTemplate) {
      if (c === '\\') {
        out += src.slice(i, i + 2);
        i += 2;
      } else if (c === '`') {
        out += c;
        i++;
        inTemplate = false;
        prev = '`';
      } else if (c === '$' && src[i + 1] === '{') {
        out += '${';
        i += 2;
        templates.push(depth);
        depth++;
        inTemplate = false;
        prev = '{';
      } else {
        out += c;
        i++;
      }
      continue;
    }
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      const end = src.indexOf('\n', i);
      i = end === -1 ? n : end;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
      out += ' ';
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
      prev = c;
      continue;
    }
    if (c === '`') {
      out += c;
      i++;
      inTemplate = true;
      continue;
    }
    if (c === '/' && (prev === '' || '(,=:[!&|?{};+-*%<>~^'.includes(prev) || /\b(?:return|typeof|case|throw|yield|await|in|of|void)$/.test(out))) {
      let j = i + 1;
      let inClass = false;
      while (j < n && src[j] !== '\n' && (src[j] !== '/' || inClass)) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      if (src[j] === '/') {
        out += src.slice(i, j + 1);
        i = j + 1;
        prev = '/';
        continue;
      }
    }
    if (c === '{') depth++;
    if (c === '}') {
      depth--;
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        templates.pop();
        out += c;
        i++;
        inTemplate = true;
        continue;
      }
    }
    out += c;
    if (!/\s/.test(c)) prev = c;
    i++;
  }
  return out;
}

/** The names a module exports: declarations and `export { … }` lists (re-exports included). */
function exportedNames(code: string): string[] {
  const names = new Set<string>();
  const declaration = /\bexport\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?(?:abstract\s+)?(?:function\s*\*?|class|const\s+enum|const|let|var|interface|type|enum)\s+([A-Za-z_$][\w$]*)/g;
  for (const m of code.matchAll(declaration)) names.add(m[1]!);
  for (const m of code.matchAll(/\bexport\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const item of m[1]!.split(',')) {
      const words = item.trim().replace(/^type\s+/, '').split(/\s+as\s+/);
      const name = words[words.length - 1]!.trim();
      if (name) names.add(name);
    }
  }
  return [...names];
}

/** What a module loads at run time (`import type` and `export type … from` are erased). */
function runtimeSpecifiers(code: string): string[] {
  return [
    ...code.matchAll(/^\s*import\s+(?!type\b)(?:[^'"`;]*?\sfrom\s*)?['"]([^'"]+)['"]/gm),
    ...code.matchAll(/^\s*export\s+(?!type\b)[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/gm),
    ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
}

/** The packages a module loads at run time. */
function runtimePackages(code: string): string[] {
  return runtimeSpecifiers(code)
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
    .map((s) => s.split('/').slice(0, s.startsWith('@') ? 2 : 1).join('/'));
}

/** The packages the modules reachable from `entries` (repository-relative .ts files) load at run time. */
function packagesReachableFrom(entries: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries].map((e) => path.join(root, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = stripComments(readFileSync(file, 'utf8'));
    for (const p of runtimePackages(code)) packages.add(p);
    for (const s of runtimeSpecifiers(code).filter((x) => x.startsWith('.'))) queue.push(path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
  }
  return packages;
}

function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) return e === 'node_modules' ? [] : filesUnder(p);
    return /\.(?:ts|mts|mjs)$/.test(e) && !e.endsWith('.d.ts') ? [p] : [];
  });
}

/** The source files behind package.json's "main" and "exports" (dist/X.js is built from X.ts). */
function publicEntryPoints(): Set<string> {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { main?: string; exports?: unknown };
  const targets: string[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'string') targets.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(collect);
  };
  collect(pkg.main);
  collect(pkg.exports);
  const sources = new Set<string>();
  for (const t of targets) {
    const m = /^\.\/dist\/(.+?)(?:\.d)?\.js$|^\.\/dist\/(.+?)\.d\.ts$/.exec(t);
    const rel = m ? `${m[1] ?? m[2]}.ts` : undefined;
    if (rel) sources.add(rel);
  }
  return sources;
}

/** The repository files a module imports by relative path, types included (a `.js` specifier names its `.ts` source). */
function importedFiles(abs: string, code: string): string[] {
  const specifiers = [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.[^'"]+)['"]/g)].map((m) => m[1]!);
  return specifiers.map((s) => path.relative(root, path.resolve(path.dirname(abs), s.replace(/\.js$/, '.ts'))).split(path.sep).join('/'));
}

interface Scan {
  exports: { file: string; name: string }[];
  /** Non-test file → the identifiers its code contains. */
  words: Map<string, Set<string>>;
  /** Non-test file → the repository files it imports. */
  imports: Map<string, Set<string>>;
  entryPoints: Set<string>;
  /** The packages production code loads at run time. */
  packages: Set<string>;
}

function scan(): Scan {
  const words = new Map<string, Set<string>>();
  const imports = new Map<string, Set<string>>();
  const exports: Scan['exports'] = [];
  const packages = new Set<string>();
  const production = new Set(PRODUCTION_DIRS.flatMap((d) => filesUnder(path.join(root, d))));
  for (const abs of CONSUMER_DIRS.flatMap((d) => filesUnder(path.join(root, d)))) {
    const file = path.relative(root, abs).split(path.sep).join('/');
    const code = stripComments(readFileSync(abs, 'utf8'));
    words.set(file, new Set(code.match(/(?<![\w$])[A-Za-z_$][\w$]*/g)));
    imports.set(file, new Set(importedFiles(abs, code)));
    if (!production.has(abs) || !/\.ts$/.test(file)) continue;
    for (const name of exportedNames(code)) exports.push({ file, name });
    for (const p of runtimePackages(code)) packages.add(p);
  }
  return { exports, words, imports, entryPoints: publicEntryPoints(), packages };
}

const started = performance.now();
const { exports, words, imports, entryPoints, packages } = scan();
const scanMs = performance.now() - started;
/** Whether another non-test file imports `file` and names `name` (a same-named export of another module does not count). */
const usedElsewhere = (file: string, name: string) => [...words].some(([other, ws]) => other !== file && imports.get(other)!.has(file) && ws.has(name));

describe('exports of production code', () => {
  it('are found: the public entry points, and every exported name', () => {
    expect(entryPoints.size).toBeGreaterThan(0);
    for (const e of entryPoints) expect(words.has(e)).toBe(true); // package.json points at a source file
    // A scan that found next to nothing would pass whatever the code does.
    expect(exports.length).toBeGreaterThan(300);
    process.stderr.write(`exports: ${exports.length} exported names in ${words.size} files, scanned in ${Math.round(scanMs)} ms\n`);
  });

  it('are each used by another non-test file, or are public API, or are allowed with a reason', () => {
    const unused = exports
      .filter(({ file, name }) => !entryPoints.has(file) && !(`${file}:${name}` in ALLOWED) && !usedElsewhere(file, name))
      .map(({ file, name }) => `${file}: ${name}`);
    // Move what only tests use to test/, un-export what only its own file uses, delete what nothing uses.
    expect(unused).toEqual([]);
  });

  it('are allowed only while they need it', () => {
    const stale = Object.keys(ALLOWED).filter((key) => {
      const [file, name] = key.split(':') as [string, string];
      return !exports.some((e) => e.file === file && e.name === name) || usedElsewhere(file, name);
    });
    expect(stale).toEqual([]);
  });
});

describe('runtime dependencies', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<'dependencies' | 'peerDependencies' | 'devDependencies', Record<string, string> | undefined>;
  const names = (deps: Record<string, string> | undefined) => Object.keys(deps ?? {});

  it("are exactly the packages the library (package.json's exports) loads, client-node as a peer", () => {
    // A dependency the library does not load would be installed for nothing by every library user;
    // one it loads but that is not a dependency would be missing for them.
    const library = packagesReachableFrom(entryPoints);
    expect([...library].sort()).toEqual([...names(pkg.dependencies), ...names(pkg.peerDependencies)].sort());
    expect(names(pkg.peerDependencies)).toEqual(['@kubernetes/client-node']);
    for (const server of ['express', 'winston', 'prom-client', '@peculiar/x509', 'commander']) expect(library.has(server)).toBe(false);
  });

  it('hold, with the devDependencies the bundles carry, every package production code loads', () => {
    // The servers' and the CLI's packages are bundled into their entry points by `npm run build`.
    const declared = new Set([...names(pkg.dependencies), ...names(pkg.peerDependencies), ...names(pkg.devDependencies)]);
    expect([...packages].filter((p) => !declared.has(p))).toEqual([]);
    // Peers are devDependencies too, so the checkout has them installed.
    for (const peer of names(pkg.peerDependencies)) expect(names(pkg.devDependencies)).toContain(peer);
  });
});

describe('the scan itself', () => {
  it('sees every form of export, and no export inside a comment', () => {
    const code = stripComments(
      [
        'export async function* gen() {}',
        'export abstract class Base {}',
        'export const enum E { A }',
        'export interface I {}',
        'export type T<X> = X;',
        "export { a, b as c, type D } from './x.js';",
        'export type {\n  F,\n  G as H,\n};',
        '// export function commented() {}',
        '/* export const alsoCommented = 1; */',
        "const url = 'https://example.com/'; export let afterUrl = 1;",
        'const re = /["\'`]\\/\\//g; export const afterRegex = 2;',
        'const t = `${x ? `//${y}` : "a"}`; export var afterTemplate = 3;',
        'const half = 4 / 2; export function afterDivision() {}',
      ].join('\n'),
    );
    expect(exportedNames(code).sort()).toEqual(['Base', 'D', 'E', 'F', 'H', 'I', 'T', 'a', 'afterDivision', 'afterRegex', 'afterTemplate', 'afterUrl', 'c', 'gen'].sort());
  });

  it('sees the packages a module loads, not those it only takes types from', () => {
    const code = [
      "import * as t from 'io-ts';",
      "import { a, type B } from '@scope/pkg/sub';",
      "import type { C } from 'types-only';",
      "import 'side-effect';",
      "export { d } from 're-exported';",
      "export type { E } from 'types-only-too';",
      "const m = await import('lazy');",
      "import { f } from './local.js';",
      "import fs from 'node:fs';",
    ].join('\n');
    expect(runtimePackages(code).sort()).toEqual(['@scope/pkg', 'io-ts', 'lazy', 're-exported', 'side-effect']);
  });
});
