// What the image runs: `npm run build` bundles the controller's entry point (docs/adr/0014), and
// that bundle, started with the Deployment's Node flags and environment, converges an import
// against real clusters (the other controller suites run the TypeScript sources).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { adminKubeConfig, createTestNamespace } from '../harness/env.js';
import { kubemcsa } from './cli-support.js';
import { createImport, createPodLister, installControllerPrerequisites, readSecret, startController, tokenOf, waitForReady, type RunningController } from './controller-support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let stage: string;
let controller: RunningController | undefined;
let local: Awaited<ReturnType<typeof createTestNamespace>>;
let remote: Awaited<ReturnType<typeof createTestNamespace>>;

beforeAll(async () => {
  mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
  stage = mkdtempSync(path.join(ROOT, '.tmp', 'bundle-'));
  const env = { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}` };
  await new Promise<void>((resolve, reject) =>
    execFile('npm', ['run', 'build', '--silent', '--', '--outDir', path.join(stage, 'dist')], { cwd: ROOT, env, timeout: 180_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`npm run build failed: ${stderr}`)) : resolve(),
    ),
  );
  await installControllerPrerequisites('cluster1');
  const boot = await kubemcsa(['bootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2']);
  if (boot.code !== 0) throw new Error(`bootstrap failed: ${boot.stderr}`);
  local = await createTestNamespace('cluster1', 'bundle');
  remote = await createTestNamespace('cluster2', 'bundle-src');
  controller = await startController({ compiled: path.join(stage, 'dist') });
}, 240_000);

afterAll(async () => {
  await controller?.stop();
  await local?.delete();
  await remote?.delete();
  await kubemcsa(['unbootstrap', '--target-context', 'cluster1', '--source-context', 'cluster2']);
  if (stage) rmSync(stage, { recursive: true, force: true });
}, 120_000);

describe('the bundled controller (npm run build)', () => {
  it('is self-contained: it starts from a directory with no node_modules and no compiled tree', async () => {
    const alone = mkdtempSync(path.join(os.tmpdir(), 'mcsa-bundle-alone-'));
    try {
      copyFileSync(path.join(stage, 'dist', 'streams', 'controller', 'main.js'), path.join(alone, 'main.js'));
      writeFileSync(path.join(alone, 'package.json'), '{"type":"module"}\n');
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['main.js', '--help'], { cwd: alone }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
      );
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(/^Usage: multicluster-service-account-controller /);
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });

  it('runs with the Deployment flags and converges a registration and an import', async () => {
    expect(controller!.process.running).toBe(true);
    await waitForReady('cluster1', INSTALL_NAMESPACE, 'cluster2', 'True', 'TokenIssued');
    await createPodLister(adminKubeConfig('cluster2'), remote.name, 'pod-lister');
    await createImport('cluster1', { metadata: { name: 'bundled', namespace: local.name }, spec: { clusterName: 'cluster2', namespace: remote.name, name: 'pod-lister' } });
    const ready = await waitForReady('cluster1', local.name, 'bundled', 'True', 'TokenIssued');
    expect(ready.status?.secrets).toEqual([{ name: secretNameForImport('bundled') }]);
    expect(tokenOf(await readSecret('cluster1', local.name, secretNameForImport('bundled')))).toMatch(/^eyJ/);
    expect(await controller!.metric('mcsa_watch_connections')).toBe(3); // imports, Secrets, cluster2's ServiceAccounts
  });
});
