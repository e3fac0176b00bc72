import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { CliError } from '../../../src/bootstrap/errors.js';
import { main, type Runners } from '../../../cli/program.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: Array<[string, unknown]>;
}

async function run(argv: string[], fail?: Error): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const calls: Array<[string, unknown]> = [];
  const record =
    (name: string) =>
    async (o: unknown): Promise<void> => {
      calls.push([name, o]);
      if (fail) throw fail;
    };
  const runners: Runners = {
    bootstrap: record('bootstrap'),
    unbootstrap: record('unbootstrap'),
    grant: record('grant'),
    revoke: record('revoke'),
    export: record('export'),
    kubeconfig: record('kubeconfig'),
    status: record('status'),
    federate: record('federate'),
    unfederate: record('unfederate'),
  };
  const out = { data: (s: string) => void (stdout += s), progress: (l: string) => void (stderr += `${l}\n`) };
  const code = await main(argv, runners, out, { write: (s: string) => void (stderr += s) });
  return { code, stdout, stderr, calls };
}

const oneErrorLine = (stderr: string) => {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^kubemcsa: error: /);
  return lines[0]!;
};

describe('kubemcsa argument handling', () => {
  it('passes decoded options to the command', async () => {
    const r = await run(['bootstrap', '--target-context', 'c1', '--source-context', 'c2', '--source-namespaces', 'a,b', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      ['bootstrap', { target: { context: 'c1' }, source: { context: 'c2' }, sourceNamespaces: ['a', 'b'], registrationSeconds: 86_400, dryRun: true, wait: false, timeoutMs: 120_000 }],
    ]);
    const b = await run(['bootstrap', '--registration-duration', '2h']);
    expect(b.calls[0]![1]).toMatchObject({ registrationSeconds: 7200 });
    const e = await run(['export', 'sa', '-n', 'ns', '--audience', 'x', '--audience', 'y', '-o', 'json']);
    expect(e.calls[0]![1]).toMatchObject({ serviceAccount: 'sa', namespace: 'ns', audiences: ['x', 'y'], output: 'json' });
  });

  it.each([
    [['bootstrap', '--bogus'], /unknown option '--bogus'/],
    [['export'], /missing required argument 'NAME'/],
    [['kubeconfig'], /missing required argument 'IMPORT'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['status', '-o', 'xml'], /argument 'xml' is invalid/],
    [['bootstrap', '--target-name', 'gke_proj_zone_name'], /invalid --target-name "gke_proj_zone_name"/],
    [['export', 'sa', '--duration', '1m'], /at least 600/],
    [['bootstrap', '--timeout'], /argument missing/],
    [['bootstrap', '--registration-duration', '5m'], /--registration-duration "5m": a token lives from 600 s \(10m\) to 604800 s \(168h\)/],
    [['bootstrap', '--registration-duration', '169h'], /--registration-duration "169h"/],
    [['grant', '-n', 'team-a', '--target-name', 't'], /exactly one of a SERVICEACCOUNT argument, --all-service-accounts or --cluster-wide/],
    [['grant', 'sa', '--all-service-accounts', '-n', 'team-a', '--target-name', 't'], /exactly one of/],
    [['revoke', '--all-service-accounts', '--cluster-wide', '--target-name', 't'], /exactly one of/],
    [['grant', 'sa', '--target-name', 't'], /missing --namespace/],
    [['grant', '--cluster-wide', '-n', 'team-a', '--target-name', 't'], /takes no --namespace/],
    [['grant', 'sa', '-n', 'team-a'], /name the target cluster with --target-name/],
    [['grant', 'sa', '-n', 'kube-system', '--target-name', 't'], /namespace kube-system is never granted/],
    [['revoke', '--all-service-accounts', '-n', 'multicluster-service-account', '--target-name', 't'], /namespace multicluster-service-account is never granted/],
    [['grant', 'sa', '-n', 'team-a', '--target-name', 'Bad_Name'], /invalid --target-name "Bad_Name"/],
    [['grant', 'sa', '-n', 'team-a', '--target-name', 't', '--source-name', 's'], /unknown option '--source-name'/],
  ])('%j is a usage error: exit 2, one line', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(oneErrorLine(r.stderr)).toMatch(message);
    expect(r.calls).toEqual([]);
  });

  it('passes grants and revokes of each scope', async () => {
    const sa = await run(['grant', 'pod-lister', '-n', 'team-a', '--target-name', 'cluster1', '--source-context', 'c2']);
    expect(sa.code).toBe(0);
    expect(sa.calls).toEqual([['grant', { source: { context: 'c2' }, target: { name: 'cluster1' }, grant: { namespace: 'team-a', serviceAccount: 'pod-lister' }, dryRun: false }]]);
    const ns = await run(['revoke', '--all-service-accounts', '-n', 'team-a', '--target-context', 'c1', '--dry-run']);
    expect(ns.calls).toEqual([['revoke', { source: {}, target: { context: 'c1' }, grant: { namespace: 'team-a', serviceAccount: '*' }, dryRun: true }]]);
    const wide = await run(['grant', '--cluster-wide', '--target-name', 'cluster1', '--source-kubeconfig', '/s.yaml']);
    expect(wide.calls[0]![1]).toMatchObject({ source: { kubeconfig: '/s.yaml' }, grant: { namespace: '*', serviceAccount: '*' } });
  });

  it('a failing command exits 1 with one line and no stack', async () => {
    const r = await run(['status'], new CliError('cannot list ServiceAccountImports in cluster cluster1 (context c): forbidden'));
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toBe('kubemcsa: error: cannot list ServiceAccountImports in cluster cluster1 (context c): forbidden');
    const u = await run(['status'], new Error('boom\n    at somewhere (file.ts:1:1)'));
    expect(u.code).toBe(1);
    expect(oneErrorLine(u.stderr)).not.toContain('file.ts');
  });

  it('never prints a token in an error', async () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const r = await run(['status'], new Error(`request failed with Authorization: Bearer ${jwt}`));
    expect(r.stderr).not.toContain(jwt);
  });

  it('--help and --version exit 0', async () => {
    for (const argv of [['--help'], ['bootstrap', '--help'], ['--version'], ['export', '-h']]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toBe('');
    }
  });

  it('every command has examples in its help', async () => {
    for (const cmd of ['bootstrap', 'unbootstrap', 'grant', 'revoke', 'export', 'kubeconfig', 'status', 'federate', 'unfederate', 'version', 'completion']) {
      const r = await run([cmd, '--help']);
      expect(r.stdout).toMatch(new RegExp(`Examples:\\n  kubemcsa ${cmd} `));
    }
  });

  it('docs/cli.md shows exactly the --help output of every command', async () => {
    const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
    for (const cmd of ['kubemcsa', 'bootstrap', 'unbootstrap', 'grant', 'revoke', 'export', 'kubeconfig', 'status', 'federate', 'unfederate', 'version', 'completion']) {
      const r = await run(cmd === 'kubemcsa' ? ['--help'] : [cmd, '--help']);
      const block = new RegExp(`<!-- help:${cmd} -->\\n\`\`\`text\\n([\\s\\S]*?)\\n\`\`\``).exec(doc)?.[1];
      expect(block).toBe(r.stdout.trimEnd());
    }
  });

  it('docs/cli.md documents every flag of every command', async () => {
    const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
    for (const cmd of ['bootstrap', 'unbootstrap', 'grant', 'revoke', 'export', 'kubeconfig', 'status', 'federate', 'unfederate']) {
      const r = await run([cmd, '--help']);
      const flags = [...r.stdout.matchAll(/^ {2}(-\w, )?(--[a-z-]+)/gm)].map((m) => m[2]!);
      expect(flags.length).toBeGreaterThan(2);
      for (const f of flags) expect(doc).toMatch(new RegExp(`\\| \`(-\\w, )?${f}[ \`]`));
    }
  });
});
