// Docs versus code: the CRD reference names exactly the CRD's fields, and the CLI, controller and
// webhook pages name exactly the flags their programs' --help prints.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { Reasons } from '../../src/api/import.js';
import { SecretAnnotations } from '../../src/secret.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');
const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// (a) CRD fields

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
}

interface Crd {
  spec: {
    versions: Array<{
      name: string;
      schema: { openAPIV3Schema: Schema };
      additionalPrinterColumns?: Array<{ name: string; jsonPath: string }>;
    }>;
  };
}

/** Every field path under `prefix`: `spec.clusterName`, `status.secrets`, `status.secrets[].name`, … */
function fieldPaths(schema: Schema, prefix: string): string[] {
  const out: string[] = [];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const p = `${prefix}.${name}`;
    out.push(p);
    if (child.properties) out.push(...fieldPaths(child, p));
    if (child.items?.properties) out.push(...fieldPaths(child.items, `${p}[]`));
  }
  return out;
}

/** Inline code spans of a Markdown text (fenced blocks excluded). */
function codeSpans(md: string): string[] {
  const withoutFences = md.replace(/^```[^\n]*\n[\s\S]*?^```[ \t]*$/gm, '');
  return [...withoutFences.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** A code span written as a field path of the import: `spec.x`, `status.y[].z`. */
const FIELD_PATH = /^(spec|status)(\.[A-Za-z][A-Za-z0-9]*(\[\])?)+$/;

// ---------------------------------------------------------------------------------------------
// (b) flags

/** The long flags of the `Options:` section of a commander --help text. */
function helpFlags(help: string): string[] {
  const section = /^Options:\n([\s\S]*?)(?:\n\n|\n?(?![\s\S]))/m.exec(help)?.[1] ?? '';
  return [...section.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!);
}

const FLAG = /(?<![\w-])--[a-z][a-z0-9-]*/g;
const KUBEMCSA_COMMANDS = ['bootstrap', 'unbootstrap', 'grant', 'revoke', 'export', 'kubeconfig', 'status', 'federate', 'unfederate', 'version', 'completion'] as const;
/** Where a kubemcsa invocation names its subcommand: `kubemcsa export`, `kubectl mcsa status`, `cli/kubemcsa.ts bootstrap`, `npm run kubemcsa -- status`. */
const KUBEMCSA_INVOCATION = new RegExp(`(?:\\bkubemcsa(?:\\.ts)?|\\bkubectl mcsa)(?:\\s+--)?\\s+(${KUBEMCSA_COMMANDS.join('|')})\\b`);
/** Commands whose flags are not the documented program's own. */
const FOREIGN = /^(?:\$\s+)?(?:kubectl|node|npm|npx|go|docker|curl|git|jest)\b/;

interface FlagUse {
  flag: string;
  /** The program the flag is written for: a kubemcsa command name, or the page's default. */
  owner: string;
  line: number;
}

/**
 * Every `--flag` written in a Markdown page, with the program it belongs to. Flags in commands of
 * other programs (kubectl, node, npm…) are skipped; flags after `kubemcsa <command>` belong to
 * that command; the rest belong to `defaultOwner(line)` (e.g. the section's command).
 */
function flagUses(md: string, defaultOwner: (line: number) => string): FlagUse[] {
  const uses: FlagUse[] = [];
  let inFence = false;
  md.split('\n').forEach((text, i) => {
    const line = i + 1;
    if (/^\s*```/.test(text)) {
      inFence = !inFence;
      return;
    }
    // Inline code spans are commands of their own; in a fence the whole line is one.
    const segments: string[] = [];
    if (inFence) segments.push(text);
    else {
      const spans = [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
      segments.push(...spans, text.replace(/`[^`\n]+`/g, ' '));
    }
    for (const segment of segments) {
      // Pipelines: each side is its own command.
      for (const part of segment.split(/\s\|\s|&&|;/)) {
        const cmd = part.trim();
        const invocation = KUBEMCSA_INVOCATION.exec(cmd);
        if (invocation) {
          const after = cmd.slice(invocation.index + invocation[0].length);
          for (const m of after.matchAll(FLAG)) uses.push({ flag: m[0], owner: invocation[1]!, line });
          continue;
        }
        if (FOREIGN.test(cmd)) continue;
        for (const m of cmd.matchAll(FLAG)) uses.push({ flag: m[0], owner: defaultOwner(line), line });
      }
    }
  });
  return uses;
}

/** For docs/cli.md: the command whose `### <command>` section a line is in, else `kubemcsa` (any command). */
function cliSectionOwner(md: string): (line: number) => string {
  const owners: string[] = [];
  let current = '*';
  for (const text of md.split('\n')) {
    const h3 = /^### (\S+)\s*$/.exec(text);
    if (h3) current = h3[1]!;
    else if (/^#{1,2} /.test(text)) current = '*';
    owners.push(current);
  }
  return (line) => owners[line - 1] ?? '*';
}

/** The lines of a `### <command>` section of docs/cli.md. */
function cliSection(md: string, command: string): string {
  const m = new RegExp(`^### ${command}\\s*\\n([\\s\\S]*?)(?=^#{1,3} |(?![\\s\\S]))`, 'm').exec(md);
  return m?.[1] ?? '';
}

async function helpOf(entry: string, args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', entry, ...args, '--help'], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', COLUMNS: '100' },
    timeout: 30_000,
  });
  return stdout;
}

const help = new Map<string, string>();

beforeAll(async () => {
  const jobs: Array<[string, string, string[]]> = [
    ['kubemcsa', 'cli/kubemcsa.ts', []],
    ...KUBEMCSA_COMMANDS.map((c): [string, string, string[]] => [c, 'cli/kubemcsa.ts', [c]]),
    ['controller', 'streams/controller/main.ts', []],
    ['webhook', 'streams/webhook/main.ts', []],
  ];
  await Promise.all(jobs.map(async ([name, entry, args]) => help.set(name, await helpOf(entry, args))));
}, 60_000);

const flagsOf = (program: string): string[] => {
  const text = help.get(program);
  if (text === undefined) throw new Error(`no --help output for ${program}`);
  return helpFlags(text);
};
const allKubemcsaFlags = (): Set<string> => new Set(['kubemcsa', ...KUBEMCSA_COMMANDS].flatMap(flagsOf));
const where = (page: string, u: FlagUse) => `${page}:${u.line} ${u.flag} (${u.owner})`;

describe('docs/reference/crd.md', () => {
  const crd = parse(read('manifests/crd/serviceaccountimports.yaml')) as Crd;
  const version = crd.spec.versions.find((v) => v.name === 'v1alpha1')!;
  const schema = version.schema.openAPIV3Schema;
  const paths = [...fieldPaths(schema.properties!.spec!, 'spec'), ...fieldPaths(schema.properties!.status!, 'status')];
  // The same page documents the ServiceAccountImportPolicy CRD (spec only, no status).
  const policyCrd = parse(read('manifests/crd/serviceaccountimportpolicies.yaml')) as Crd;
  const policyVersion = policyCrd.spec.versions.find((v) => v.name === 'v1alpha1')!;
  const policyPaths = fieldPaths(policyVersion.schema.openAPIV3Schema.properties!.spec!, 'spec');
  const doc = read('docs/reference/crd.md');
  const spans = new Set(codeSpans(doc));

  it('the schema walk finds the fields of the contract', () => {
    expect(paths).toEqual(expect.arrayContaining(['spec.clusterName', 'spec.namespace', 'spec.name', 'status.secrets[].name', 'status.conditions[].reason']));
  });

  it('names every field of spec and status', () => {
    expect(paths.filter((p) => !spans.has(p))).toEqual([]);
  });

  it('names every field of the ServiceAccountImportPolicy spec', () => {
    expect(policyPaths).toEqual(expect.arrayContaining(['spec.clusters', 'spec.mappings[].remoteNamespace']));
    expect(policyPaths.filter((p) => !spans.has(p))).toEqual([]);
  });

  it('names no field the schemas do not have', () => {
    const known = new Set([...paths, ...policyPaths]);
    expect(codeSpans(doc).filter((s) => FIELD_PATH.test(s) && !known.has(s))).toEqual([]);
  });

  it('lists every printer column with its JSON path', () => {
    for (const c of [...(version.additionalPrinterColumns ?? []), ...(policyVersion.additionalPrinterColumns ?? [])]) {
      expect(spans).toContain(c.name);
      expect(spans).toContain(c.jsonPath);
    }
  });

  it('lists every Ready reason and every Secret annotation', () => {
    for (const r of Object.values(Reasons)) expect(spans).toContain(r);
    for (const a of Object.values(SecretAnnotations)) expect(spans).toContain(a);
  });
});

describe('docs/operations/troubleshooting.md', () => {
  it('has a section for every Ready reason', () => {
    const doc = read('docs/operations/troubleshooting.md');
    for (const r of Object.values(Reasons)) expect(doc).toMatch(new RegExp(`^### \`${r}\``, 'm'));
  });
});

describe('flags in the docs match --help', () => {
  it('reads flags from --help output', () => {
    expect(flagsOf('bootstrap')).toEqual(expect.arrayContaining(['--target-context', '--source-namespaces', '--help']));
    expect(flagsOf('controller')).toEqual(expect.arrayContaining(['--no-leader-elect', '--refresh-ratio']));
    expect(flagsOf('webhook')).toEqual(expect.arrayContaining(['--listen-address', '--tls-cert-file']));
  });

  describe('docs/cli.md (kubemcsa)', () => {
    const page = 'docs/cli.md';
    const doc = read(page);

    it.each(['kubemcsa', ...KUBEMCSA_COMMANDS])('documents every flag of %s in its section', (command) => {
      const section = cliSection(doc, command);
      expect(section).not.toBe('');
      const written = new Set(flagUses(section, () => command).map((u) => u.flag));
      expect(flagsOf(command).filter((f) => !written.has(f))).toEqual([]);
    });

    it('writes no flag its command does not have', () => {
      const all = allKubemcsaFlags();
      const wrong = flagUses(doc, cliSectionOwner(doc)).filter((u) => !(u.owner === '*' ? all.has(u.flag) : flagsOf(u.owner).includes(u.flag)));
      expect(wrong.map((u) => where(page, u))).toEqual([]);
    });
  });

  it('docs/getting-started.md gives each kubemcsa command only flags it has', () => {
    const page = 'docs/getting-started.md';
    const uses = flagUses(read(page), () => '').filter((u) => u.owner !== '');
    expect(new Set(uses.map((u) => u.owner))).toEqual(new Set(['bootstrap', 'unbootstrap', 'grant', 'revoke', 'kubeconfig', 'status']));
    expect(uses.filter((u) => !flagsOf(u.owner).includes(u.flag)).map((u) => where(page, u))).toEqual([]);
  });

  it('every other page gives each kubemcsa command only flags it has (runbooks, install, troubleshooting…)', () => {
    const pages = ['README.md', ...readdirSync(path.join(root, 'docs'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.md') && f !== 'cli.md' && !f.startsWith('adr/'))
      .map((f) => `docs/${f}`)];
    const uses = pages.flatMap((page) => flagUses(read(page), () => '').filter((u) => u.owner !== '').map((u) => ({ page, u })));
    // The runbooks and troubleshooting are among the pages read, and they name kubemcsa commands with flags.
    expect(uses.map((x) => x.page)).toEqual(expect.arrayContaining(['docs/operations/alerts.md', 'docs/operations/troubleshooting.md']));
    expect(uses.filter(({ u }) => !flagsOf(u.owner).includes(u.flag)).map(({ page, u }) => where(page, u))).toEqual([]);
  });

  describe.each([
    ['controller', 'docs/reference/controller.md'],
    ['webhook', 'docs/webhook.md'],
  ])('%s: %s', (program, page) => {
    const doc = (): string => {
      if (!existsSync(path.join(root, page))) throw new Error(`${page} does not exist: the ${program}'s flags are not documented`);
      return read(page);
    };

    it('documents every flag of --help', () => {
      const written = new Set(flagUses(doc(), () => program).map((u) => u.flag));
      expect(flagsOf(program).filter((f) => !written.has(f))).toEqual([]);
    });

    it('writes no flag the program does not have', () => {
      const wrong = flagUses(doc(), () => program).filter((u) =>
        u.owner === program ? !flagsOf(program).includes(u.flag) : !flagsOf(u.owner).includes(u.flag),
      );
      expect(wrong.map((u) => where(page, u))).toEqual([]);
    });
  });
});

describe('the flag scanner', () => {
  it('attributes flags to the command they are written for and skips other programs', () => {
    const md = [
      'Use `--wait` here.',
      '```sh',
      'kubemcsa export pod-lister -n default --context c2 | kubectl --context c1 apply -f -',
      'node --import tsx cli/kubemcsa.ts status --output json',
      'kubectl apply --server-side -f x.yaml',
      '```',
      '| `--timeout <duration>` | how long |',
    ].join('\n');
    expect(flagUses(md, () => 'page')).toEqual([
      { flag: '--wait', owner: 'page', line: 1 },
      { flag: '--context', owner: 'export', line: 3 },
      { flag: '--output', owner: 'status', line: 4 },
      { flag: '--timeout', owner: 'page', line: 7 },
    ]);
  });

  it('reads only the Options section of --help', () => {
    const text = ['Usage: x [options]', '', 'Options:', '  -n, --namespace <ns>  the namespace', '  --wait                wait', '                        (default: --not-a-flag)', '  -h, --help            help', '', 'Examples:', '  x --example'].join('\n');
    expect(helpFlags(text)).toEqual(['--namespace', '--wait', '--help']);
  });
});
