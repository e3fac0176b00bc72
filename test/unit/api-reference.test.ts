// The library's API reference (npm run docs:api: TypeDoc over src/config/index.ts, configured by
// typedoc.json), generated into a scratch directory:
// - without a warning: every export documented, every {@link} resolved, no exported signature
//   using a type the entry point does not export (typedoc.json makes each of these fail the run,
//   which a fixture breaking all three shows);
// - every runtime export of the entry point, and its public types, have a page;
// - every relative link and #anchor of the HTML resolves: the pages' href/src attributes, and
//   the entries of the navigation and search indexes the pages load from assets/.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import * as library from '../../src/config/index.js';
import { filesUnder, htmlAnchors, htmlLinks, unresolvedLinks, type Link } from './links.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');

interface Run {
  code: number;
  output: string;
  ms: number;
}

function runTypedoc(cwd: string, args: string[]): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [typedoc, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, timeout: 150_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output: stdout + stderr, ms: Date.now() - started }),
    );
  });
}

/** The entries of an `assets/*.js` index TypeDoc writes as `window.x = "<base64 of deflated JSON>"`. */
function assetIndex<T>(file: string): T {
  const text = readFileSync(file, 'utf8');
  return JSON.parse(inflateSync(Buffer.from(text.slice(text.indexOf('"') + 1, text.lastIndexOf('"')), 'base64')).toString('utf8')) as T;
}

interface NavigationEntry {
  text: string;
  path?: string;
  children?: NavigationEntry[];
}
const navigationPaths = (entries: NavigationEntry[]): string[] => entries.flatMap((e) => [...(e.path ? [e.path] : []), ...navigationPaths(e.children ?? [])]);

interface SearchRow {
  name: string;
  url: string;
  parent?: string;
}

let scratch: string;
let out: string;
let reference: Run;
let fixture: Run;

beforeAll(async () => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-api-reference-'));
  out = path.join(scratch, 'api');
  // A package whose entry point breaks each rule once, documented with the project's options.
  const broken = path.join(scratch, 'fixture');
  mkdirSync(broken);
  writeFileSync(path.join(broken, 'package.json'), JSON.stringify({ name: 'fixture', version: '0.0.0' }));
  writeFileSync(path.join(broken, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2023', types: [] }, files: ['index.ts'] }));
  // Its own options file extends the project's (a --tsconfig flag does not override an options file's).
  writeFileSync(path.join(broken, 'typedoc.json'), JSON.stringify({ extends: [path.join(root, 'typedoc.json')], entryPoints: ['index.ts'], tsconfig: 'tsconfig.json', out: 'out' }));
  writeFileSync(
    path.join(broken, 'index.ts'),
    [
      '/**',
      ' * A fixture.',
      ' * @packageDocumentation',
      ' */',
      'interface Hidden {',
      '  /** A field. */',
      '  field: string;',
      '}',
      '/** Returns a type the entry point does not export. */',
      "export function leaksHidden(): Hidden { return { field: '' }; }",
      'export function undocumentedFunction(): void {}',
      '/** Links to {@link NoSuchThing}. */',
      'export const brokenLink = 1;',
    ].join('\n'),
  );
  [reference, fixture] = await Promise.all([runTypedoc(root, ['--out', out]), runTypedoc(broken, [])]);
  console.log(`typedoc: the reference in ${(reference.ms / 1000).toFixed(1)} s, the fixture in ${(fixture.ms / 1000).toFixed(1)} s`);
}, 180_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the API reference (typedoc.json)', () => {
  it('is generated without a warning', () => {
    expect({ code: reference.code, problems: reference.output.split('\n').filter((l) => /\[(warning|error)\]/.test(l)) }).toEqual({ code: 0, problems: [] });
  });

  it('fails on an undocumented export, a broken {@link} and a signature using a type the entry point does not export', () => {
    expect(fixture.code).not.toBe(0);
    expect(fixture.output).toMatch(/undocumentedFunction .*does not have any documentation/);
    expect(fixture.output).toMatch(/Failed to resolve link to "NoSuchThing"/);
    expect(fixture.output).toMatch(/Hidden, defined in .* is referenced by leaksHidden but not included in the documentation/);
  });

  it('has a page for every export of the entry point and its public types', () => {
    const rows = assetIndex<{ rows: SearchRow[] }>(path.join(out, 'assets', 'search.js')).rows;
    const documented = new Set(rows.filter((r) => r.parent === undefined).map((r) => r.name));
    const types = ['ConfigAndNamespace', 'ConfigSource', 'ConfigErrorCode', 'ConfigErrorDetails', 'LoaderOptions', 'WatchOptions', 'WatchTiming'];
    expect([...Object.keys(library), ...types].filter((name) => !documented.has(name))).toEqual([]);
  });

  it('the HTML scanner reads href, src and xlink:href, and id and name anchors', () => {
    const html = '<a href="../a.html#x&amp;y">a</a>\n<script src="b.js"></script><svg><use xlink:href="i.svg#i"/></svg>\n<h2 id="top">T</h2><a name="n"></a>';
    expect(htmlLinks(html, 'p.html').map((l) => `${l.line} ${l.target}`)).toEqual(['1 ../a.html#x&y', '2 b.js', '2 i.svg#i']);
    expect([...htmlAnchors(html)]).toEqual(['top', 'n']);
  });

  it('every relative link and #anchor of its pages and indexes resolves', () => {
    const pages = filesUnder(out, '.html');
    expect(pages.length).toBeGreaterThan(20);
    const index = path.join(out, 'index.html');
    const links: Link[] = [
      ...pages.flatMap((p) => htmlLinks(readFileSync(p, 'utf8'), p)),
      ...filesUnder(path.join(out, 'assets'), '.svg').flatMap((p) => htmlLinks(readFileSync(p, 'utf8'), p)),
      // The sidebar and the search box link to these, relative to the site's root.
      ...navigationPaths(assetIndex<NavigationEntry[]>(path.join(out, 'assets', 'navigation.js'))).map((target) => ({ file: index, line: 0, target })),
      ...assetIndex<{ rows: SearchRow[] }>(path.join(out, 'assets', 'search.js')).rows.map((r) => ({ file: index, line: 0, target: r.url })),
    ];
    expect(links.filter((l) => l.target.includes('#') && !l.target.startsWith('http')).length).toBeGreaterThan(50);
    const anchorsOf = (file: string) => (/\.(html|svg)$/.test(file) ? htmlAnchors(readFileSync(file, 'utf8')) : undefined);
    expect(unresolvedLinks(links, out, anchorsOf)).toEqual([]);
  });
});
