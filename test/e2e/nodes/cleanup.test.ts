// SIGINT, SIGTERM or SIGKILL of a harness with a node and a running pod leaves nothing behind: no
// process of the cluster (kubelet, containerd, shim, runc, the container, the control plane), no
// mount, no network namespace, no cgroup, no temporary directory.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { waitFor } from '../../harness/https.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CGROUPS = '/sys/fs/cgroup';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every process in a cgroup tree of the pids hierarchy, with its command line. */
function members(cgroup: string): Map<number, string> {
  const out = new Map<number, string>();
  const walk = (d: string) => {
    for (const pid of (read(path.join(d, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number)) out.set(pid, read(`/proc/${pid}/cmdline`) ?? '');
    for (const e of existsSync(d) ? readdirSync(d, { withFileTypes: true }) : []) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(path.join(CGROUPS, 'pids', cgroup));
  return out;
}

function netnsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** What is left of the cluster: live former members, processes in its namespaces or seeing its mounts, cgroups, the directory. */
function leftovers(before: Map<number, string>, netns: string, dir: string, cgroup: string): string[] {
  const left: string[] = [];
  for (const [pid, cmd] of before) if (cmd && read(`/proc/${pid}/cmdline`) === cmd) left.push(`process ${pid} ${cmd.split('\0')[0]}`);
  for (const p of readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)) {
    if (netnsOf(p) === netns) left.push(`process ${p} in the node's network namespace`);
    if ((read(`/proc/${p}/mountinfo`) ?? '').includes(dir)) left.push(`process ${p} sees a mount under ${dir}`);
  }
  for (const h of readdirSync(CGROUPS)) if (existsSync(path.join(CGROUPS, h, cgroup))) left.push(`cgroup ${h}/${cgroup}`);
  if (existsSync(dir)) left.push(`directory ${dir}`);
  return left;
}

describe.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)('%s of a harness with a node', (signal) => {
  it('leaves no process, mount, network namespace, cgroup or directory', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/harness/one-node.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      await waitFor('the harness to run its pod', async () => {
        if (child.exitCode !== null) throw new Error(`the harness exited (${child.exitCode}): ${err.slice(-2000)}`);
        return out.includes('\n');
      }, 180_000, 200);
    } catch (e) {
      child.kill('SIGKILL');
      await exited;
      throw e;
    }
    const state = JSON.parse(out.trim()) as { dir: string; cgroup: string; holderPid: number };
    const before = members(state.cgroup);
    const cmds = [...before.values()].map((c) => path.basename(c.split('\0')[0] ?? ''));
    expect(cmds).toEqual(expect.arrayContaining(['kubelet', 'containerd', 'containerd-shim-runc-v2', 'pause', 'kube-apiserver', 'etcd']));
    const netns = netnsOf(state.holderPid)!;

    child.kill(signal);
    await exited;
    await waitFor(`nothing left after ${signal}`, async () => leftovers(before, netns, state.dir, state.cgroup).length === 0, 60_000, 250)
      .catch((e: Error) => {
        throw new Error(`${e.message}: ${leftovers(before, netns, state.dir, state.cgroup).join('; ')}`);
      });
  }, 300_000);
});
