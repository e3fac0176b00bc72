// kubemcsa export: a Secret from cluster2, applied into another namespace of cluster1, whose
// kubeconfig works with kubectl when mounted the way the kubelet mounts secret volumes.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import path from 'node:path';
import { parse } from 'yaml';
import { clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { writeSecretVolume } from '../harness/kubelet-volume.js';
import { errorLine, kubemcsa, scratchDir } from './cli-support.js';

jest.setTimeout(120_000);

const kc1 = () => clusterInfo('cluster1').kubeconfigPath;
const kc2 = () => clusterInfo('cluster2').kubeconfigPath;

function claims(token: string): { aud: string[]; exp: number; iat: number; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

describe('kubemcsa export', () => {
  const scratch = scratchDir('cli-export');
  let src: { name: string; delete: () => Promise<void> };
  let dst: { name: string; delete: () => Promise<void> };

  beforeAll(async () => {
    src = await createTestNamespace('cluster2', 'cli-export-src');
    dst = await createTestNamespace('cluster1', 'cli-export-dst');
    for (const args of [
      ['create', 'serviceaccount', 'pod-lister', '-n', src.name],
      ['create', 'role', 'sa-reader', '--verb=list', '--resource=serviceaccounts', '-n', src.name],
      ['create', 'rolebinding', 'sa-reader', '--role=sa-reader', `--serviceaccount=${src.name}:pod-lister`, '-n', src.name],
    ]) {
      const r = await kubectl(kc2(), args);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    }
  });

  afterAll(async () => {
    await src.delete();
    await dst.delete();
    scratch.cleanup();
  });

  it('export … | kubectl apply -f - into another cluster and namespace gives a Secret whose kubeconfig works', async () => {
    const r = await kubemcsa(['export', 'pod-lister', '-n', src.name, '--context', 'cluster2', '--as', 'cluster2-pod-lister']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    const applied = await kubectl(kc1(), ['apply', '-n', dst.name, '-f', '-'], r.stdout);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);

    const got = await kubectl(kc1(), ['get', 'secret', 'cluster2-pod-lister', '-n', dst.name, '-o', 'json']);
    const secret = JSON.parse(got.stdout) as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('Opaque');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'config', 'namespace', 'server', 'token']);
    const files = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    expect(files.namespace).toBe(src.name);
    expect(files.server).toBe(clusterInfo('cluster2').server);
    expect(files['ca.crt']).toBe(clusterInfo('cluster2').caPem);

    const mount = path.join(scratch.dir, 'mount');
    await writeSecretVolume(mount, files);
    const config = path.join(mount, 'config');
    const who = await kubectl(config, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(who.stdout).toBe(`system:serviceaccount:${src.name}:pod-lister`);
    // The kubeconfig's context namespace is the ServiceAccount's: no -n needed.
    const list = await kubectl(config, ['get', 'serviceaccounts', '-o', 'name']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('serviceaccount/pod-lister');
    expect((await kubectl(config, ['get', 'secrets'])).code).not.toBe(0);
  });

  it('honours --duration, --audience and -o json', async () => {
    const r = await kubemcsa(['export', 'pod-lister', '-n', src.name, '--context', 'cluster2', '--duration', '10m', '--audience', 'vault', '-o', 'json']);
    expect(r.code).toBe(0);
    const secret = JSON.parse(r.stdout) as { kind: string; metadata: { name: string; namespace?: string }; data: Record<string, string> };
    expect(secret.kind).toBe('Secret');
    expect(secret.metadata).toEqual({ name: 'pod-lister' });
    const token = Buffer.from(secret.data.token!, 'base64').toString('utf8');
    const c = claims(token);
    expect(c.exp - c.iat).toBe(600);
    expect(c.aud).toEqual(['vault']);
    expect(c.sub).toBe(`system:serviceaccount:${src.name}:pod-lister`);
    const cfg = parse(Buffer.from(secret.data.config!, 'base64').toString('utf8'));
    expect(cfg.users[0].user.token).toBe(token);
  });

  it('rejects a duration under 10 minutes as a usage error', async () => {
    const r = await kubemcsa(['export', 'pod-lister', '-n', src.name, '--context', 'cluster2', '--duration', '5m']);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/--duration "5m"/);
  });
});
