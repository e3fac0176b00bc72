// Relative links of the docs (Markdown) and of the generated API reference (HTML): what they point
// at, and whether the file and the #anchor exist. Used by doc-links.test.ts and api-reference.test.ts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** A link written in a file: its target as written (`../cli.md#grant`, `#flags`, `assets/x.css`). */
export interface Link {
  file: string;
  line: number;
  target: string;
}

/** A scheme (`https:`, `mailto:`, `data:`) or a protocol-relative URL: not a file of the tree. */
const EXTERNAL = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;

/** The 1-based line of an offset. */
const lineAt = (text: string, offset: number): number => text.slice(0, offset).split('\n').length;

/**
 * The links among `links` that do not resolve: a relative path must name an existing file or
 * directory inside `root` (a leading `/` is from `root`, as GitHub reads it), and an `#anchor` must
 * be one of `anchorsOf(file)` (files it returns undefined for, such as source files, are not
 * checked for anchors). External URLs are skipped. Each result reads `file:line target: why`.
 */
export function unresolvedLinks(links: Link[], root: string, anchorsOf: (file: string) => ReadonlySet<string> | undefined): string[] {
  const anchors = new Map<string, ReadonlySet<string> | undefined>();
  const broken: string[] = [];
  for (const link of links) {
    if (EXTERNAL.test(link.target) || link.target === '') continue;
    const hash = link.target.indexOf('#');
    const pathPart = (hash >= 0 ? link.target.slice(0, hash) : link.target).replace(/\?.*$/, '');
    const fragment = hash >= 0 ? decodeURIComponent(link.target.slice(hash + 1)) : '';
    const decoded = decodeURIComponent(pathPart);
    const file = decoded === '' ? link.file : decoded.startsWith('/') ? path.join(root, decoded) : path.resolve(path.dirname(link.file), decoded);
    const why = (reason: string) => broken.push(`${path.relative(root, link.file)}:${link.line} ${link.target}: ${reason}`);
    if (file !== root && !file.startsWith(root + path.sep)) {
      why('points outside the repository');
      continue;
    }
    if (!existsSync(file)) {
      why(`${path.relative(root, file)} does not exist`);
      continue;
    }
    if (fragment === '' || statSync(file).isDirectory()) continue;
    if (!anchors.has(file)) anchors.set(file, anchorsOf(file));
    const known = anchors.get(file);
    if (known && !known.has(fragment)) why(`no anchor #${fragment} in ${path.relative(root, file)}`);
  }
  return broken;
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** The text with fenced code blocks and inline code spans blanked (same length, same lines). */
function withoutCode(md: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  return md.replace(/^ {0,3}(`{3,}|~{3,})[^\n]*\n[\s\S]*?^ {0,3}\1[ \t]*$/gm, blank).replace(/(`+)[^`\n][^\n]*?\1/g, blank);
}

/** The links of a Markdown text: inline links and images `[t](x "title")`, and reference definitions `[r]: x`. */
export function markdownLinks(md: string, file: string): Link[] {
  const text = withoutCode(md);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^\s)]*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)].map((m) => ({ at: m.index, target: m[1]!.replace(/^<|>$/g, '') }));
  const definitions = [...text.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/gm)].map((m) => ({ at: m.index, target: m[1]!.replace(/^<|>$/g, '') }));
  return [...inline, ...definitions].sort((a, b) => a.at - b.at).map(({ at, target }) => ({ file, line: lineAt(text, at), target }));
}

/**
 * GitHub's anchor for a heading's text (github-slugger): lower case, every character that is not
 * a letter, mark, digit, connector (`_`), space or `-` dropped, spaces turned into `-`.
 */
export function githubSlug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The text GitHub renders for a heading's Markdown: link and image text kept, code marks and HTML tags dropped. */
function headingText(md: string): string {
  return md
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '');
}

/** The anchors of a Markdown text: its headings' slugs (a repeated one gets `-1`, `-2`, …, as on GitHub) and HTML `id`/`name` attributes. */
export function markdownAnchors(md: string): Set<string> {
  const text = md.replace(/^ {0,3}(`{3,}|~{3,})[^\n]*\n[\s\S]*?^ {0,3}\1[ \t]*$/gm, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of text.matchAll(/^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const slug = githubSlug(headingText(m[1]!));
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  for (const m of text.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

// ---------------------------------------------------------------------------------------------
// HTML

const decodeEntities = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The `href` and `src` attributes of an HTML (or SVG) text. */
export function htmlLinks(html: string, file: string): Link[] {
  return [...html.matchAll(/\s(?:href|src|xlink:href)="([^"]*)"/g)].map((m) => ({ file, line: lineAt(html, m.index), target: decodeEntities(m[1]!) }));
}

/** The `id` and `name` attributes of an HTML (or SVG) text: the anchors a `#fragment` can name. */
export function htmlAnchors(html: string): Set<string> {
  return new Set([...html.matchAll(/\s(?:id|name)="([^"]*)"/g)].map((m) => decodeEntities(m[1]!)));
}

/** Every file under `dir` whose name ends with `extension`, skipping the directories `skip` names (and hidden ones). */
export function filesUnder(dir: string, extension: string, skip: ReadonlySet<string> = new Set()): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name.startsWith('.') || skip.has(e.name) ? [] : filesUnder(full, extension, skip);
    return e.isFile() && e.name.endsWith(extension) ? [full] : [];
  });
}
