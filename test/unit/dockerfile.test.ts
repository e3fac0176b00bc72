// The Dockerfile cannot be built here (no container engine), so its structure is checked: a
// node:24 build stage (npm ci + npm run build), a distroless Node 24 runtime running as UID 65532
// with no shell steps and no node_modules (the entry points are self-contained bundles), COPY
// sources that exist and are not dockerignored, and a layout where the Deployments'
// `node streams/…/main.js` commands resolve from WORKDIR to bundled entry points.
// test/integration/package.test.ts checks the same paths in a real build, outside the checkout.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile → stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ from, name, instructions: [] });
    } else if (stages.length === 0) {
      if (upper !== 'ARG') throw new Error(`instruction before FROM: ${line}`);
    } else {
      stages.at(-1)!.instructions.push({ op: upper, args: args.replace(/\s+/g, ' ') });
    }
  }
  return stages;
}

/** COPY [--from=x] [--chown=…] src… dest → { from, sources, dest } (JSON form not used here). */
function parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(' ');
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** The last WORKDIR of a stage, before instruction `upTo` (exclusive). */
function workdir(stage: Stage, upTo = stage.instructions.length): string | undefined {
  return stage.instructions.slice(0, upTo).filter((i) => i.op === 'WORKDIR').at(-1)?.args;
}

const stages = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = stages.at(-1)!;
const named = (name: string) => stages.find((s) => s.name === name);
const dockerignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const ignored = (p: string) => dockerignore.some((pattern) => p === pattern || p.startsWith(`${pattern}/`) || (pattern.startsWith('*') && p.endsWith(pattern.slice(1))));

const tsconfigBuild = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as {
  compilerOptions: { outDir: string; rootDir: string };
  include: string[];
};

/** `node X.js` commands of the Deployments. */
function deploymentScripts(): string[] {
  const scripts: string[] = [];
  for (const file of ['manifests/controller/deployment.yaml', 'manifests/webhook/deployment.yaml']) {
    for (const doc of parseAllDocuments(readFileSync(path.join(ROOT, file), 'utf8'))) {
      const o = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: { command?: string[] }[] } } } } | null;
      if (o?.kind !== 'Deployment') continue;
      for (const c of o.spec?.template?.spec?.containers ?? []) scripts.push(c.command!.find((a) => a.endsWith('.js'))!);
    }
  }
  return scripts;
}

describe('Dockerfile', () => {
  it('has a node:24 build stage and a distroless Node 24 nonroot runtime', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages.slice(0, -1)) expect(s.from).toMatch(/^node:24([-.].*)?$/);
    expect(runtime.from).toBe('gcr.io/distroless/nodejs24-debian12:nonroot');
  });

  it('builds with npm ci and npm run build, and copies no node_modules into the runtime', () => {
    const runs = stages.slice(0, -1).flatMap((s) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args));
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const sources = runtime.instructions.filter((i) => i.op === 'COPY').flatMap((i) => parseCopy(i.args).sources);
    expect(sources.filter((src) => src.includes('node_modules'))).toEqual([]);
  });

  it('runs as the non-root UID 65532 in WORKDIR /app, with no shell step in the runtime stage', () => {
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toMatch(/^65532(:65532)?$/);
    expect(workdir(runtime)).toBe('/app');
    expect(runtime.instructions.filter((i) => i.op === 'RUN')).toEqual([]);
  });

  it('puts node on PATH (distroless keeps it in /nodejs/bin) so the Deployments can run `node …`', () => {
    const env = runtime.instructions.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    const pathValue = /\bPATH=(\S+)/.exec(env)?.[1] ?? '';
    expect(pathValue.split(':')).toContain('/nodejs/bin');
  });

  it('copies only files that exist in the build context and are not dockerignored', () => {
    for (const s of stages) {
      for (const i of s.instructions.filter((x) => x.op === 'COPY' || x.op === 'ADD')) {
        const c = parseCopy(i.args);
        if (c.from !== undefined) continue;
        for (const src of c.sources) {
          expect({ src, exists: existsSync(path.join(ROOT, src)), ignored: ignored(src) }).toEqual({ src, exists: true, ignored: false });
        }
      }
    }
  });

  it("copies the bundled entry points from the build stage so the Deployments' commands and the image's CMD resolve from WORKDIR", () => {
    const copies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => parseCopy(i.args));
    const cmd = JSON.parse(runtime.instructions.filter((i) => i.op === 'CMD').at(-1)!.args) as string[];
    const scripts = [...deploymentScripts(), cmd[0]!];
    expect(scripts).toEqual(expect.arrayContaining(['streams/controller/main.js', 'streams/webhook/main.js', 'cli/kubemcsa.js']));
    // The scripts the image runs are the ones scripts/build.mjs bundles (self-contained: no node_modules in the image).
    const bundled = JSON.parse(/const BUNDLED = (\[[^\]]*\])/.exec(readFileSync(path.join(ROOT, 'scripts', 'build.mjs'), 'utf8'))![1]!.replace(/'/g, '"')) as string[];
    expect(bundled).toEqual(expect.arrayContaining(scripts));
    expect(tsconfigBuild.compilerOptions.rootDir).toBe('.');
    for (const script of scripts) {
      // tsc (rootDir ".") emits <outDir>/<script> from the <script>.ts source when it is included.
      const source = script.replace(/\.js$/, '.ts');
      expect({ script, source: existsSync(path.join(ROOT, source)), included: tsconfigBuild.include.some((d) => source.startsWith(`${d}/`)) }).toEqual({ script, source: true, included: true });
      // Some COPY from the build stage brings <outDir>/<top>/ to WORKDIR/<top>/.
      const top = script.split('/')[0]!;
      const copy = copies.find((c) => c.from !== undefined && c.sources.length === 1 && c.sources[0] === path.posix.join(workdir(named(c.from)!)!, tsconfigBuild.compilerOptions.outDir, top));
      expect({ script, copied: copy !== undefined && path.posix.resolve(workdir(runtime)!, copy.dest) === path.posix.join('/app', top) }).toEqual({ script, copied: true });
    }
    // package.json beside the code: "type": "module" for the bundles, the CLI's version.
    expect(copies.some((c) => c.from === undefined && c.sources.includes('package.json'))).toBe(true);
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules, dist, git history, local state and kubeconfigs out of the build context', () => {
    for (const p of ['node_modules', 'dist', '.git', '.tmp', 'x.kubeconfig']) expect({ p, ignored: ignored(p) }).toEqual({ p, ignored: true });
  });
});
