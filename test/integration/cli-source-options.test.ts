// Where the registration's server and CA come from: a `certificate-authority` file (relative to
// the kubeconfig, which the original turned into an empty ca.crt) and `--source-server`.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { secretNameForImport } from '../../src/naming.js';
import { credentialFromSecretData } from '../../src/secret.js';
import { clusterInfo, kubectl } from '../harness/env.js';
import { ensureCrd, kubemcsa, listStatus, scratchDir, tokenKubeConfig } from './cli-support.js';

jest.setTimeout(180_000);

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('kubemcsa bootstrap: source server and CA', () => {
  const scratch = scratchDir('cli-source-options');
  let flags: string[];

  beforeAll(async () => {
    await ensureCrd('cluster1');
    const c2 = clusterInfo('cluster2');
    scratch.write('ca.crt', c2.caPem);
    const kubeconfig = scratch.write('source.kubeconfig', {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'cafile', cluster: { server: c2.server, 'certificate-authority': 'ca.crt' } }],
      users: [{ name: 'admin', user: { 'client-certificate-data': b64(c2.admin.certPem), 'client-key-data': b64(c2.admin.keyPem) } }],
      contexts: [{ name: 'ctx', context: { cluster: 'cafile', user: 'admin' } }],
      'current-context': 'ctx',
    });
    flags = ['--target-context', 'cluster1', '--target-name', 'cafile-target', '--source-kubeconfig', kubeconfig];
  });

  afterAll(async () => {
    await kubemcsa(['unbootstrap', ...flags, '--wait']);
    scratch.cleanup();
  });

  async function credential() {
    const r = await kubectl(clusterInfo('cluster1').kubeconfigPath, ['get', 'secret', '-n', INSTALL_NAMESPACE, secretNameForImport('cafile'), '-o', 'json']);
    expect(r.code).toBe(0);
    return credentialFromSecretData((JSON.parse(r.stdout) as { data: Record<string, string> }).data)!;
  }

  it('reads the CA from a certificate-authority file relative to the kubeconfig', async () => {
    const r = await kubemcsa(['bootstrap', ...flags]);
    expect(r.stderr).not.toContain('kubemcsa: error');
    expect(r.code).toBe(0);
    const cred = await credential();
    expect(cred.caPem).toBe(clusterInfo('cluster2').caPem);
    expect(cred.server).toBe(clusterInfo('cluster2').server);
    expect(await listStatus(tokenKubeConfig(cred.server, cred.caPem, cred.token), 'serviceaccounts')).toBe(200);
  });

  it('--source-server changes the URL in the Secret and re-mints the token (the fingerprint changed)', async () => {
    const viaLocalhost = clusterInfo('cluster2').server.replace('127.0.0.1', 'localhost');
    const r = await kubemcsa(['bootstrap', ...flags, '--source-server', viaLocalhost]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/token minted .*\(the source server, CA or spec changed\)/);
    const cred = await credential();
    expect(cred.server).toBe(viaLocalhost);
    expect(await listStatus(tokenKubeConfig(cred.server, cred.caPem, cred.token), 'serviceaccounts')).toBe(200);
    const again = await kubemcsa(['bootstrap', ...flags, '--source-server', viaLocalhost]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/Secret .*: unchanged/);
  });
});
