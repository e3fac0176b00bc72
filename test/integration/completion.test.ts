// `kubemcsa completion zsh|fish` in real zsh and fish (Debian's, unpacked into the cache by
// test/harness/debian.ts: the machine has neither). bash is tested in test/unit/cli/completion.test.ts.
// Lives with the slow tests because the first run downloads the packages.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { main, type Runners } from '../../cli/program.js';
import { debianRoot } from '../harness/debian.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-completion-shells-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function script(shell: string): Promise<string> {
  let data = '';
  expect(await main(['completion', shell], {} as Runners, { data: (s) => (data += s), progress: () => undefined }, { write: () => undefined })).toBe(0);
  const file = path.join(scratch, `kubemcsa.${shell}`);
  writeFileSync(file, data);
  return file;
}

let root: string;
let bin: string;
beforeAll(async () => {
  root = debianRoot('shells', ['zsh', 'zsh-common', 'fish', 'fish-common', 'libpcre2-32-0']);
  // kubectl stand-in: the contexts a user's kubeconfig would have.
  bin = path.join(scratch, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'kubectl'), '#!/bin/sh\n[ "$*" = "config get-contexts -o name" ] && printf "cluster1\\ncluster2\\nother\\n"\n');
  chmodSync(path.join(bin, 'kubectl'), 0o755);
}, 300_000);

const env = () => ({ PATH: `${bin}:/usr/bin:/bin`, HOME: scratch, LD_LIBRARY_PATH: path.join(root, 'usr/lib/x86_64-linux-gnu') });

describe('kubemcsa completion fish, in fish', () => {
  let file: string;
  beforeAll(async () => {
    file = await script('fish');
  });
  /** fish's own answer for the command line (`complete -C`), candidates only. */
  const complete = (line: string): string[] => {
    const r = spawnSync(path.join(root, 'usr/bin/fish'), ['--no-config', '-c', `set fish_function_path ${path.join(root, 'usr/share/fish/functions')}; source ${file}; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8', env: env() });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]!).sort();
  };

  it('completes commands (with their summaries), flags per command, -o choices, contexts and shells', () => {
    expect(complete('kubemcsa boo')).toEqual(['bootstrap']);
    expect(complete('kubemcsa bootstrap --tar')).toEqual(['--target-context', '--target-kubeconfig', '--target-name']);
    expect(complete('kubemcsa unbootstrap --dr')).toEqual(['--dry-run']);
    expect(complete('kubemcsa status -o ')).toEqual(['json', 'table', 'yaml']);
    expect(complete('kubemcsa bootstrap --source-context clu')).toEqual(['cluster1', 'cluster2']);
    expect(complete('kubemcsa completion ')).toEqual(['bash', 'fish', 'zsh']);
    expect(complete('kubectl-mcsa sta')).toEqual(['status']);
  });
});

describe('kubemcsa completion zsh, in zsh', () => {
  let file: string;
  beforeAll(async () => {
    file = await script('zsh');
  });
  /**
   * What zsh's bash-completion layer (bashcompinit) gets from the script for the command line,
   * narrowed to the word's prefix as zsh's compadd does.
   */
  const complete = (...words: string[]): { registered: string; candidates: string[] } => {
    const cur = words.at(-1)!;
    const array = words.map((w) => `'${w}'`).join(' ');
    const code = [
      `module_path=(${path.join(root, 'usr/lib/x86_64-linux-gnu/zsh/5.9')})`,
      `fpath=(${path.join(root, 'usr/share/zsh/functions')}/*(/))`,
      'autoload -U compinit && compinit -u -D',
      `source ${file}`,
      'print -r -- "registered: $_comps[kubemcsa] | $_comps[kubectl-mcsa]"',
      `COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}`,
      `compgen -F _kubemcsa -- '${cur}'`,
    ].join('\n');
    const r = spawnSync(path.join(root, 'bin/zsh'), ['-f', '-c', code], { encoding: 'utf8', env: env() });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const [registered, ...rest] = r.stdout.split('\n');
    return { registered: registered!, candidates: rest.filter((l) => l !== '' && l.startsWith(cur)).sort() };
  };

  it('registers kubemcsa and kubectl-mcsa with the completion system', () => {
    expect(complete('kubemcsa', '').registered).toBe('registered: _bash_complete -F _kubemcsa | _bash_complete -F _kubemcsa');
  });

  it('completes commands, flags per command, -o choices, contexts and shells', () => {
    expect(complete('kubemcsa', 'boo').candidates).toEqual(['bootstrap']);
    expect(complete('kubemcsa', 'bootstrap', '--tar').candidates).toEqual(['--target-context', '--target-kubeconfig', '--target-name']);
    expect(complete('kubemcsa', 'status', '-o', '').candidates).toEqual(['json', 'table', 'yaml']);
    expect(complete('kubemcsa', 'grant', '--source-context', 'clu').candidates).toEqual(['cluster1', 'cluster2']);
    expect(complete('kubemcsa', 'completion', '').candidates).toEqual(['--help', '-h', 'bash', 'fish', 'zsh']);
  });
});
