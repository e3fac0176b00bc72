// `kubemcsa completion bash` run by a real bash: commands, flags per command, -o choices,
// kubeconfig contexts (from a kubectl stand-in on PATH), file names, the completion shells.
// zsh and fish are checked on real shells in test/integration/completion.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { main, type Runners } from '../../../cli/program.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-completion-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function script(shell: string): Promise<string> {
  let data = '';
  const code = await main(['completion', shell], {} as Runners, { data: (s) => (data += s), progress: () => undefined }, { write: () => undefined });
  expect(code).toBe(0);
  return data;
}

let bashScript: string;
beforeAll(async () => {
  bashScript = path.join(scratch, 'kubemcsa.bash');
  writeFileSync(bashScript, await script('bash'));
  // kubectl stand-in: the contexts a user's kubeconfig would have.
  mkdirSync(path.join(scratch, 'bin'));
  writeFileSync(path.join(scratch, 'bin', 'kubectl'), '#!/bin/sh\n[ "$*" = "config get-contexts -o name" ] && printf "cluster1\\ncluster2\\nother\\n"\n');
  chmodSync(path.join(scratch, 'bin', 'kubectl'), 0o755);
  mkdirSync(path.join(scratch, 'files'));
  for (const f of ['kc-a.yaml', 'kc-b.yaml', 'notes.txt']) writeFileSync(path.join(scratch, 'files', f), '');
});

/** What bash completes for the command line `words` (the last word is the one being completed). */
function complete(...words: string[]): string[] {
  const array = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${JSON.stringify(bashScript)}; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _kubemcsa; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    encoding: 'utf8',
    cwd: path.join(scratch, 'files'),
    env: { PATH: `${path.join(scratch, 'bin')}:/usr/bin:/bin` },
  });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  return r.stdout.split('\n').filter((l) => l !== '').sort();
}

describe('kubemcsa completion bash', () => {
  it('completes commands, and the global flags', () => {
    expect(complete('kubemcsa', 'boo')).toEqual(['bootstrap']);
    expect(complete('kubemcsa', '')).toEqual(expect.arrayContaining(['bootstrap', 'unbootstrap', 'grant', 'revoke', 'export', 'kubeconfig', 'status', 'completion', '--version']));
  });

  it("completes each command's own flags only", () => {
    expect(complete('kubemcsa', 'bootstrap', '--tar')).toEqual(['--target-context', '--target-kubeconfig', '--target-name']);
    expect(complete('kubemcsa', 'unbootstrap', '--dr')).toEqual(['--dry-run']);
    expect(complete('kubemcsa', 'export', '--')).toEqual(['--as', '--audience', '--context', '--duration', '--help', '--kubeconfig', '--namespace', '--output', '--server']);
    expect(complete('kubemcsa', 'status', '--wa')).toEqual([]);
  });

  it('completes -o with its choices, per command', () => {
    expect(complete('kubemcsa', 'status', '-o', '')).toEqual(['json', 'table', 'yaml']);
    expect(complete('kubemcsa', 'export', '--output', 'y')).toEqual(['yaml']);
    expect(complete('kubemcsa', 'bootstrap', '--dry-run', '-o', '')).toEqual(['json', 'yaml']);
  });

  it('completes context flags with kubectl contexts, kubeconfig flags with files', () => {
    expect(complete('kubemcsa', 'bootstrap', '--source-context', 'clu')).toEqual(['cluster1', 'cluster2']);
    expect(complete('kubemcsa', 'status', '--context', '')).toEqual(['cluster1', 'cluster2', 'other']);
    expect(complete('kubemcsa', 'grant', '--target-kubeconfig', 'kc')).toEqual(['kc-a.yaml', 'kc-b.yaml']);
  });

  it('completes the shells of the completion command, and registers kubectl-mcsa too', () => {
    expect(complete('kubemcsa', 'completion', '')).toEqual(['--help', '-h', 'bash', 'fish', 'zsh']);
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${JSON.stringify(bashScript)}; complete -p kubemcsa kubectl-mcsa`], { encoding: 'utf8' });
    expect(r.stdout.trim().split('\n')).toEqual(['complete -F _kubemcsa kubemcsa', 'complete -F _kubemcsa kubectl-mcsa']);
  });

  it('refuses an unknown shell as a usage error', async () => {
    let err = '';
    const code = await main(['completion', 'powershell'], {} as Runners, { data: () => undefined, progress: () => undefined }, { write: (s) => (err += s) });
    expect(code).toBe(2);
    expect(err).toMatch(/'powershell' is invalid for argument 'SHELL'. Allowed choices are bash, zsh, fish/);
  });
});
