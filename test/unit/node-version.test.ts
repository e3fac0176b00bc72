// Each entry point stops with one clear line on a Node.js older than 22, before loading anything
// that would fail obscurely (kubemcsa on Node 20 used to say "Cannot read properties of undefined").
// The old Node is simulated: a preload rewrites process.versions.node before the entry point runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-node-version-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const pretend = (version: string) => {
  const file = path.join(scratch, `node-${version}.mjs`);
  writeFileSync(file, `Object.defineProperty(process.versions, 'node', { value: ${JSON.stringify(version)} });\n`);
  return file;
};

describe('the Node.js version guard', () => {
  it.each(['cli/kubemcsa.ts', 'streams/controller/main.ts', 'streams/webhook/main.ts'])('%s exits 1 with one clear line on Node 20', (entry) => {
    const r = spawnSync(process.execPath, ['--import', pretend('20.20.2'), '--import', 'tsx', path.join(ROOT, entry), '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 1, stdout: '' });
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^multicluster-service-account: needs Node\.js 22 or later \(tested on 24 LTS\); this is v\d+/)]);
  });

  it('lets Node 22 through', () => {
    const r = spawnSync(process.execPath, ['--import', pretend('22.0.0'), '--import', 'tsx', path.join(ROOT, 'cli/kubemcsa.ts'), '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
