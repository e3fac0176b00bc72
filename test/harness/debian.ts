// Debian packages as a directory tree, for tests that need a tool the machine lacks (zsh, fish):
// `apt-get download` into the cache, `dpkg-deb -x` into one root per set, reused when complete.
// Nothing is installed on the machine.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function cacheRoot(): string {
  return process.env.MCSA_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'multicluster-service-account');
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
}

/** The root directory holding `packages` unpacked (e.g. `<root>/usr/bin/fish`). */
export function debianRoot(name: string, packages: string[]): string {
  const dir = path.join(cacheRoot(), 'debian', name);
  const root = path.join(dir, 'root');
  const done = path.join(dir, `complete-${packages.join('+')}`);
  if (existsSync(done)) return root;
  rmSync(dir, { recursive: true, force: true });
  const debs = path.join(dir, 'debs');
  mkdirSync(debs, { recursive: true });
  process.stderr.write(`[debian] apt-get download ${packages.join(' ')}\n`);
  try {
    run('apt-get', ['download', ...packages], debs);
  } catch {
    // Empty package lists on a fresh machine: refresh them once.
    run('apt-get', ['update', '-qq'], debs);
    run('apt-get', ['download', ...packages], debs);
  }
  for (const f of readdirSync(debs).filter((f) => f.endsWith('.deb'))) run('dpkg-deb', ['-x', path.join(debs, f), root], dir);
  writeFileSync(done, '');
  return root;
}
