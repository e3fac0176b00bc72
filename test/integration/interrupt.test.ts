// Interrupting the sandbox or a test run (SIGINT, SIGTERM) leaves no control-plane process and
// no temporary directory behind.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../harness/https.js';

const root = path.resolve(import.meta.dirname, '../..');

/** PIDs of live processes whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(text) && state !== 'Z') found.push(`${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // exited while we looked
    }
  }
  return found;
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.MCSA_TEST_CLUSTERS; // the child must start clusters of its own
  return env;
}

/** Starts `args`, waits until `clusterDir()` names a directory, interrupts with `signal`, and checks the aftermath. */
async function interruptAndCheck(args: string[], env: NodeJS.ProcessEnv, clusterDir: (out: string) => string | undefined, signal: NodeJS.Signals) {
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let dir: string | undefined;
  try {
    await waitFor('the child to report its cluster directory', () => (dir = clusterDir(out)) !== undefined, 120_000, 200);
    expect(existsSync(dir!)).toBe(true);
    expect(processesMentioning(dir!).length).toBeGreaterThanOrEqual(4); // etcd + apiserver per cluster, at least
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 60_000)))]);
    clearTimeout(timer);
    expect(code).not.toBe('timeout');
    expect(code).not.toBe(0);
    await waitFor(`no process using ${dir}`, () => processesMentioning(dir!).length === 0, 10_000);
    expect(existsSync(dir!)).toBe(false);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

const sandboxDir = (out: string) => /^export KUBECONFIG=(.*)\/kubeconfig$/m.exec(out)?.[1];

describe('interruption', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} stops the sandbox and cleans up`, async () => {
      await interruptAndCheck(['--import', 'tsx', 'test/harness/sandbox.ts', '--no-nodes'], childEnv(), sandboxDir, signal);
    }, 180_000);
  }

  it('SIGINT stops a Jest run and cleans up its clusters', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'mcsa-interrupt-'));
    const marker = path.join(work, 'clusters');
    try {
      const jestBin = path.join(root, 'node_modules/jest/bin/jest.js');
      await interruptAndCheck(
        ['--experimental-vm-modules', jestBin, '-c', 'test/harness/interrupt/jest.config.js', '--runInBand'],
        childEnv({ MCSA_INTERRUPT_MARKER: marker }),
        () => (existsSync(marker) ? path.dirname(readFileSync(marker, 'utf8')) : undefined),
        'SIGINT',
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 180_000);
});
