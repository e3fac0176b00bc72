import { describe, expect, it } from '@jest/globals';
import { UsageError } from '../../../src/bootstrap/errors.js';
import {
  parseBootstrapOptions,
  parseExportOptions,
  parseFederateOptions,
  parseGrantOptions,
  parseKubeconfigOptions,
  parseStatusOptions,
  parseUnbootstrapOptions,
  parseUnfederateOptions,
} from '../../../src/bootstrap/options.js';

describe('durations', () => {
  // Every duration flag goes through the one grammar (src/duration.ts, tested there); these check
  // that a flag's value reaches it and that a bad one is a usage error naming the flag.
  const timeoutOf = (timeout: string) => parseUnbootstrapOptions({ timeout }).timeoutMs;
  it('reads Go/kubectl durations and plain seconds', () => {
    expect(timeoutOf('90s')).toBe(90_000);
    expect(timeoutOf('2m')).toBe(120_000);
    expect(timeoutOf('1h30m')).toBe(5_400_000);
    expect(timeoutOf('500ms')).toBe(500);
    expect(timeoutOf('1.5h')).toBe(5_400_000);
    expect(timeoutOf('45')).toBe(45_000);
    expect(parseBootstrapOptions({ registrationDuration: '7d' }).registrationSeconds).toBe(604_800);
  });

  it('rejects anything else, naming the flag', () => {
    for (const bad of ['', 'soon', '1h 2m', '-5s', 'm5']) {
      expect(() => timeoutOf(bad)).toThrow(UsageError);
    }
    expect(() => timeoutOf('soon')).toThrow(/--timeout "soon"/);
    expect(() => parseBootstrapOptions({ registrationDuration: 'soon' })).toThrow(/--registration-duration "soon"/);
  });
});

describe('bootstrap options', () => {
  it('fills defaults', () => {
    expect(parseBootstrapOptions({})).toEqual({ target: {}, source: {}, registrationSeconds: 86_400, dryRun: false, wait: false, timeoutMs: 120_000 });
  });

  it('passes the cluster flags through', () => {
    const o = parseBootstrapOptions({
      targetContext: 'c1',
      targetKubeconfig: '/t.yaml',
      targetName: 'eu-1',
      sourceContext: 'c2',
      sourceKubeconfig: '/s.yaml',
      sourceName: 'us-1',
      sourceServer: 'https://us-1.example.com:6443/',
      sourceNamespaces: ' a, b,,a ',
      registrationDuration: '1h30m',
      dryRun: true,
      wait: true,
      timeout: '30s',
    });
    expect(o).toEqual({
      target: { context: 'c1', kubeconfig: '/t.yaml', name: 'eu-1' },
      source: { context: 'c2', kubeconfig: '/s.yaml', name: 'us-1' },
      sourceServer: 'https://us-1.example.com:6443',
      sourceNamespaces: ['a', 'b'],
      registrationSeconds: 5400,
      dryRun: true,
      wait: true,
      timeoutMs: 30_000,
    });
  });

  it('rejects invalid names, namespaces, servers and empty values as usage errors', () => {
    expect(() => parseBootstrapOptions({ targetName: 'gke_p_z_n' })).toThrow(/--target-name "gke_p_z_n"/);
    expect(() => parseBootstrapOptions({ sourceName: 'UPPER' })).toThrow(UsageError);
    expect(() => parseBootstrapOptions({ sourceNamespaces: 'ok,Not_OK' })).toThrow(/"Not_OK"/);
    expect(() => parseBootstrapOptions({ sourceNamespaces: ' , ' })).toThrow(/at least one namespace/);
    expect(() => parseBootstrapOptions({ sourceServer: 'http://plain:80' })).toThrow(/--source-server/);
    expect(() => parseBootstrapOptions({ sourceServer: 'not a url' })).toThrow(/not a URL/);
    expect(() => parseBootstrapOptions({ targetContext: '' })).toThrow(/--target-context must not be empty/);
    expect(() => parseBootstrapOptions({ timeout: 'forever' })).toThrow(/--timeout/);
    expect(() => parseBootstrapOptions({ dryRun: 'yes' })).toThrow(/invalid options/);
  });

  it('--registration-duration: 10m to 168h, whole seconds', () => {
    expect(parseBootstrapOptions({ registrationDuration: '10m' }).registrationSeconds).toBe(600);
    expect(parseBootstrapOptions({ registrationDuration: '168h' }).registrationSeconds).toBe(604_800);
    for (const bad of ['9m59s', '168h1s', '1500ms', 'a day']) expect(() => parseBootstrapOptions({ registrationDuration: bad })).toThrow(UsageError);
    expect(() => parseBootstrapOptions({ registrationDuration: '5m' })).toThrow(/--registration-duration "5m"/);
  });

  it('unbootstrap takes the same cluster flags', () => {
    expect(parseUnbootstrapOptions({ targetContext: 'a', sourceName: 'b', wait: true })).toEqual({
      target: { context: 'a' },
      source: { name: 'b' },
      dryRun: false,
      wait: true,
      timeoutMs: 120_000,
    });
    expect(parseUnbootstrapOptions({ dryRun: true }).dryRun).toBe(true);
    expect(() => parseUnbootstrapOptions({ dryRun: true, wait: true })).toThrow(/--wait and --dry-run exclude each other/);
  });

  it('bootstrap -o: yaml or json, with --dry-run only', () => {
    expect(parseBootstrapOptions({ dryRun: true, output: 'yaml' }).output).toBe('yaml');
    expect(parseBootstrapOptions({ dryRun: true, output: 'json' }).output).toBe('json');
    expect(parseBootstrapOptions({ dryRun: true }).output).toBeUndefined();
    expect(() => parseBootstrapOptions({ output: 'yaml' })).toThrow(/--output needs --dry-run/);
    expect(() => parseBootstrapOptions({ dryRun: true, output: 'table' })).toThrow(/invalid --output "table"/);
  });
});

describe('grant options', () => {
  const target = { targetName: 'cluster1' };

  it('reads the three scopes', () => {
    expect(parseGrantOptions('sa', { ...target, namespace: 'team-a' })).toEqual({ source: {}, target: { name: 'cluster1' }, grant: { namespace: 'team-a', serviceAccount: 'sa' }, dryRun: false });
    expect(parseGrantOptions(undefined, { ...target, namespace: 'team-a', allServiceAccounts: true }).grant).toEqual({ namespace: 'team-a', serviceAccount: '*' });
    expect(parseGrantOptions(undefined, { ...target, clusterWide: true, dryRun: true })).toMatchObject({ grant: { namespace: '*', serviceAccount: '*' }, dryRun: true });
  });

  it('takes the target from --target-context without needing a name', () => {
    expect(parseGrantOptions('sa', { targetContext: 'c1', targetKubeconfig: '/t', sourceContext: 'c2', namespace: 'ns' })).toMatchObject({ target: { context: 'c1', kubeconfig: '/t' }, source: { context: 'c2' } });
  });

  it.each([
    ['no scope', undefined, { namespace: 'ns' }, /exactly one of/],
    ['two scopes', 'sa', { namespace: 'ns', allServiceAccounts: true }, /exactly one of/],
    ['all three', 'sa', { namespace: 'ns', allServiceAccounts: true, clusterWide: true }, /exactly one of/],
    ['no namespace', 'sa', {}, /missing --namespace/],
    ['a namespace with --cluster-wide', undefined, { clusterWide: true, namespace: 'ns' }, /takes no --namespace/],
    ['kube-system', 'sa', { namespace: 'kube-system' }, /kube-system is never granted: it holds the cluster's own identities/],
    ['the install namespace', undefined, { namespace: 'multicluster-service-account', allServiceAccounts: true }, /multicluster-service-account is never granted/],
    ['a bad ServiceAccount name', 'Bad_SA', { namespace: 'ns' }, /ServiceAccount name "Bad_SA"/],
    ['a bad namespace', 'sa', { namespace: 'a.b' }, /--namespace "a.b"/],
  ])('refuses %s (usage error)', (_what, name, flags, message) => {
    expect(() => parseGrantOptions(name, { ...target, ...flags })).toThrow(UsageError);
    expect(() => parseGrantOptions(name, { ...target, ...flags })).toThrow(message);
  });

  it('needs the target', () => {
    expect(() => parseGrantOptions('sa', { namespace: 'ns' })).toThrow(/--target-name/);
  });
});

describe('export options', () => {
  it('defaults: the Secret is named after the ServiceAccount, 1 h, yaml, no audiences', () => {
    expect(parseExportOptions('pod-lister', {})).toEqual({ serviceAccount: 'pod-lister', secretName: 'pod-lister', expirationSeconds: 3600, audiences: [], output: 'yaml' });
  });

  it('reads every flag', () => {
    expect(
      parseExportOptions('sa', { namespace: 'ns', context: 'c', kubeconfig: '/k', as: 'copy', duration: '24h', audience: ['a', 'b', 'a'], output: 'json', server: 'https://x:1' }),
    ).toEqual({ serviceAccount: 'sa', namespace: 'ns', context: 'c', kubeconfig: '/k', secretName: 'copy', expirationSeconds: 86400, audiences: ['a', 'b'], output: 'json', server: 'https://x:1' });
  });

  it('rejects short or fractional durations, bad names and formats', () => {
    expect(() => parseExportOptions('sa', { duration: '5m' })).toThrow(/at least 600/);
    expect(() => parseExportOptions('sa', { duration: '1500ms' })).toThrow(UsageError);
    expect(() => parseExportOptions('Bad_Name', {})).toThrow(/ServiceAccount name/);
    expect(() => parseExportOptions('sa', { namespace: 'a.b' })).toThrow(/--namespace/);
    expect(() => parseExportOptions('sa', { output: 'xml' })).toThrow(/--output "xml"/);
    expect(() => parseExportOptions(undefined, {})).toThrow(/NAME/);
  });
});

describe('kubeconfig and status options', () => {
  it('validates the import name and output', () => {
    expect(parseKubeconfigOptions('cluster2', { namespace: 'multicluster-service-account' })).toEqual({ importName: 'cluster2', namespace: 'multicluster-service-account' });
    expect(() => parseKubeconfigOptions('../etc', {})).toThrow(UsageError);
    expect(parseStatusOptions({})).toEqual({ output: 'table' });
    expect(parseStatusOptions({ output: 'json', context: 'c' })).toEqual({ output: 'json', context: 'c' });
    expect(() => parseStatusOptions({ output: 'wide' })).toThrow(UsageError);
  });
});

describe('federate and unfederate options', () => {
  it('fills defaults', () => {
    expect(parseFederateOptions({})).toEqual({ target: {}, source: {}, allowAnonymousDiscovery: false, refreshKeys: false, dryRun: false, output: 'yaml' });
    expect(parseUnfederateOptions({})).toEqual({ target: {}, source: {}, dryRun: false });
  });

  it('passes every flag through', () => {
    expect(
      parseFederateOptions({
        targetContext: 'c1',
        sourceContext: 'c2',
        sourceName: 'eu-1',
        sourceServer: 'https://eu-1.example:6443/',
        audience: ' mine ',
        discoveryUrl: 'https://oidc.example/cluster1/.well-known/openid-configuration',
        allowAnonymousDiscovery: true,
        authenticationConfig: '/etc/kubernetes/authn.yaml',
        refreshKeys: true,
        dryRun: true,
        output: 'json',
      }),
    ).toEqual({
      target: { context: 'c1' },
      source: { context: 'c2', name: 'eu-1' },
      sourceServer: 'https://eu-1.example:6443',
      audience: 'mine',
      discoveryUrl: 'https://oidc.example/cluster1/.well-known/openid-configuration',
      allowAnonymousDiscovery: true,
      authenticationConfig: '/etc/kubernetes/authn.yaml',
      refreshKeys: true,
      dryRun: true,
      output: 'json',
    });
    expect(parseUnfederateOptions({ targetName: 't', sourceName: 's', authenticationConfig: 'a.yaml', dryRun: true })).toEqual({
      target: { name: 't' },
      source: { name: 's' },
      authenticationConfig: 'a.yaml',
      dryRun: true,
    });
  });

  it('refuses bad values, naming the flag', () => {
    expect(() => parseFederateOptions({ sourceServer: 'http://x' })).toThrow(/--source-server/);
    expect(() => parseFederateOptions({ discoveryUrl: 'http://oidc.example/' })).toThrow(/--discovery-url/);
    expect(() => parseFederateOptions({ discoveryUrl: 'https://oidc.example/?q=1' })).toThrow(/without credentials, query or fragment/);
    expect(() => parseFederateOptions({ audience: ' ' })).toThrow(/--audience must not be empty/);
    expect(() => parseFederateOptions({ authenticationConfig: '' })).toThrow(/--authentication-config must not be empty/);
    expect(() => parseFederateOptions({ refreshKeys: true })).toThrow(/--refresh-keys .*give --authentication-config FILE/);
    expect(() => parseFederateOptions({ output: 'table' })).toThrow(/--output "table"/);
    expect(() => parseFederateOptions({ targetName: 'Not_A_Name' })).toThrow(UsageError);
    expect(() => parseUnfederateOptions({ authenticationConfig: ' ' })).toThrow(/--authentication-config must not be empty/);
  });
});
