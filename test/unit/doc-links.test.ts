// Every relative link of the repository's Markdown (README, CHANGELOG, SECURITY, docs/**, any
// other *.md outside node_modules and build output) names a file that exists, and every #anchor a
// heading (GitHub's slug) or an HTML anchor of its target, as GitHub renders them.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { filesUnder, githubSlug, markdownAnchors, markdownLinks, unresolvedLinks } from './links.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Build output, caches and dependencies: not documentation of this repository. */
const NOT_DOCS = new Set(['node_modules', 'dist', 'coverage', 'test-results']);
const anchorsOf = (file: string) => (file.endsWith('.md') ? markdownAnchors(readFileSync(file, 'utf8')) : undefined);

describe('the Markdown link scanner', () => {
  it('slugs headings as GitHub does', () => {
    expect(githubSlug('Two-sided consent')).toBe('two-sided-consent');
    expect(githubSlug('Limits: what one caller can cost')).toBe('limits-what-one-caller-can-cost');
    expect(githubSlug('mcsa_imports (gauge) — by cluster/namespace')).toBe('mcsa_imports-gauge--by-clusternamespace');
    expect([...markdownAnchors('# A\n## `TokenExpired`\n## A\n```sh\n# not a heading\n```\n### [Link](x.md) heading ##\n<a id="custom"></a>\n')]).toEqual(['a', 'tokenexpired', 'a-1', 'link-heading', 'custom']);
  });

  it('reads inline links, images and reference definitions, not code', () => {
    const md = ['See [cli](cli.md#grant) and ![pic](img/a.png "title").', '`[not](a-link.md)`', '```', '[nor](this.md)', '```', '[ref]: <other file.md>', '[web](https://example.com)'].join('\n');
    expect(markdownLinks(md, 'f.md').map((l) => `${l.line} ${l.target}`)).toEqual(['1 cli.md#grant', '1 img/a.png', '6 other file.md', '7 https://example.com']);
  });

  it('reports a missing file, a missing anchor and a path outside the repository', () => {
    const file = path.join(root, 'docs', 'cli.md');
    const links = ['../README.md#documentation', 'nope.md', 'README.md#nope', '#nope', '../../../etc/passwd', 'https://example.com/x.md'].map((target) => ({ file, line: 1, target }));
    expect(unresolvedLinks(links, root, anchorsOf)).toEqual([
      'docs/cli.md:1 nope.md: docs/nope.md does not exist',
      'docs/cli.md:1 README.md#nope: no anchor #nope in docs/README.md',
      'docs/cli.md:1 #nope: no anchor #nope in docs/cli.md',
      'docs/cli.md:1 ../../../etc/passwd: points outside the repository',
    ]);
  });
});

describe('links in the docs', () => {
  const pages = filesUnder(root, '.md', NOT_DOCS);

  it('finds the README, the CHANGELOG and the docs', () => {
    const relative = pages.map((p) => path.relative(root, p));
    expect(relative).toEqual(expect.arrayContaining(['README.md', 'CHANGELOG.md', 'docs/README.md', 'docs/library.md', 'docs/operations/install.md']));
  });

  it('every relative link names an existing file, and every #anchor a heading of it', () => {
    const links = pages.flatMap((p) => markdownLinks(readFileSync(p, 'utf8'), p));
    expect(links.length).toBeGreaterThan(100);
    expect(unresolvedLinks(links, root, anchorsOf)).toEqual([]);
  });
});
