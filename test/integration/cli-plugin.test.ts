// `kubectl mcsa …`: the cli/kubectl-mcsa launcher on PATH turns kubemcsa into a kubectl plugin.
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { testClusters } from '../harness/env.js';
import { ensureCrd, REPO, scratchDir } from './cli-support.js';

jest.setTimeout(60_000);

function kubectlPlugin(args: string[], binDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const { kubectl, kubeconfigPath } = testClusters();
  return new Promise((resolve) => {
    execFile(
      kubectl,
      args,
      { cwd: binDir, env: { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`, KUBECONFIG: kubeconfigPath }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('kubectl mcsa', () => {
  const scratch = scratchDir('cli-plugin');
  afterAll(() => scratch.cleanup());

  it('runs kubemcsa through a symlink to cli/kubectl-mcsa on PATH, exit codes included', async () => {
    symlinkSync(path.join(REPO, 'cli', 'kubectl-mcsa'), path.join(scratch.dir, 'kubectl-mcsa'));
    await ensureCrd('cluster1');
    const status = await kubectlPlugin(['mcsa', 'status', '--context', 'cluster1', '-o', 'json'], scratch.dir);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ cluster: 'cluster1', context: 'cluster1' });
    const usage = await kubectlPlugin(['mcsa', 'bootstrap', '--no-such-flag'], scratch.dir);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^kubemcsa: error: unknown option '--no-such-flag'/m);
  });
});
