// The Helm chart (manifests/helm/multicluster-service-account) with real helm, built from its Go
// module (test/tools/helm), and the real API server of cluster1: `helm lint` passes; with default
// values `helm template` renders exactly the objects of manifests/install.yaml (parsed and compared
// object by object); each value changes exactly the fields it is for and nothing else; bad values
// are refused with a message; the API server accepts a default and a non-default rendering
// (server-side apply, dry run), and the dry runs create nothing.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';
import { INSTALL_NAMESPACE } from '../../src/constants.js';
import { createCa } from '../../src/tls/pki.js';
import { clusterInfo, createTestNamespace, kubectl, type RunResult } from '../harness/env.js';
import { toolBinary } from '../harness/tools.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(ROOT, 'manifests', 'helm', 'multicluster-service-account');
const NS = INSTALL_NAMESPACE;
const CONTROLLER = 'multicluster-service-account-controller';
const WEBHOOK = 'multicluster-service-account-webhook';
const TLS_DIR = '/etc/multicluster-service-account/tls';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [field: string]: unknown };
  [field: string]: unknown;
}

function parseObjects(text: string, what: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${what}: ${d.errors[0]!.message}`);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

const installObjects = () => parseObjects(readFileSync(path.join(ROOT, 'manifests', 'install.yaml'), 'utf8'), 'install.yaml');

/** apiVersion/kind/namespace/name: what identifies an object in a cluster. */
const objectKey = (o: Obj) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** One difference between two renderings: an object only on one side, or a field that differs. */
type Change = { object: string; removed: true } | { object: string; added: Obj } | { object: string; path: string; from: unknown; to: unknown };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const step = (key: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

function fieldChanges(a: unknown, b: unknown, at: string, out: { path: string; from: unknown; to: unknown }[]): void {
  if (isRecord(a) && isRecord(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) fieldChanges(a[k], b[k], `${at}${step(k)}`, out);
  } else if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => fieldChanges(x, b[i], `${at}[${i}]`, out));
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push({ path: at.replace(/^\./, ''), from: a, to: b });
  }
}

/** Every difference from `before` to `after`, objects matched by `key`; sorted, so that toEqual shows a readable diff. */
function changes(before: Obj[], after: Obj[], key = objectKey): Change[] {
  const index = (list: Obj[]) => {
    const m = new Map<string, Obj>();
    for (const o of list) {
      if (m.has(key(o))) throw new Error(`${key(o)} is rendered twice`);
      m.set(key(o), o);
    }
    return m;
  };
  const a = index(before);
  const b = index(after);
  const out: Change[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(k);
    const y = b.get(k);
    if (!y) out.push({ object: k, removed: true });
    else if (!x) out.push({ object: k, added: y });
    else {
      const fields: { path: string; from: unknown; to: unknown }[] = [];
      fieldChanges(x, y, '', fields);
      out.push(...fields.map((f) => ({ object: k, ...f })));
    }
  }
  return out;
}

const sorted = (list: Change[]) =>
  [...list].sort((x, y) => x.object.localeCompare(y.object) || ('path' in x && 'path' in y ? x.path.localeCompare(y.path) : 0));

describe('the Helm chart', () => {
  let helmBin: string;
  let scratch: string;
  let install: Obj[];
  /** The key of install.yaml's object of that kind and name. */
  let keyOf: (kind: string, name: string) => string;
  let defaults: Obj[];

  const helm = (args: string[]): Promise<RunResult> =>
    new Promise((resolve) => {
      // Helm's own cache, configuration and plugin directories go to the scratch directory.
      const env = { ...process.env, HELM_CACHE_HOME: path.join(scratch, 'cache'), HELM_CONFIG_HOME: path.join(scratch, 'config'), HELM_DATA_HOME: path.join(scratch, 'data') };
      execFile(helmBin, args, { cwd: ROOT, env, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  const template = (args: string[], namespace = NS) => helm(['template', 'mcsa', CHART, '--namespace', namespace, ...args]);
  const render = async (args: string[], namespace = NS): Promise<Obj[]> => {
    const r = await template(args, namespace);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    return parseObjects(r.stdout, `helm template ${args.join(' ')}`);
  };
  const scratchFile = (name: string, text: string) => {
    const file = path.join(scratch, name);
    writeFileSync(file, text);
    return file;
  };

  // A first build of helm takes minutes (about 12 on a busy 2-core machine); scripts/test.sh builds it before the tests.
  beforeAll(async () => {
    helmBin = toolBinary('helm');
    scratch = mkdtempSync(path.join(tmpdir(), 'mcsa-helm-test-'));
    install = installObjects();
    keyOf = (kind, name) => {
      const o = install.find((x) => x.kind === kind && x.metadata.name === name);
      if (!o) throw new Error(`install.yaml has no ${kind} ${name}`);
      return objectKey(o);
    };
    defaults = await render([]);
  }, 1_800_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  describe('as a chart', () => {
    it('is tested with helm v4.3.2, the version test/tools/helm/go.mod pins', async () => {
      const pinned = /^\s*helm\.sh\/helm\/v4 (v\S+)/m.exec(readFileSync(path.join(ROOT, 'test', 'tools', 'helm', 'go.mod'), 'utf8'))?.[1];
      expect(pinned).toBe('v4.3.2');
      const r = await helm(['version', '--template', '{{.Version}}']);
      expect({ code: r.code, version: r.stdout.trim() }).toEqual({ code: 0, version: pinned });
    });

    it.each([
      ['default values', [] as string[]],
      ['files TLS, policies, another log level', ['--set', 'webhook.tls.mode=files', '--set', 'webhook.tls.secretName=cert', '--set', 'webhook.tls.injectCAFrom=ns/cert', '--set', 'importPolicies.a.namespaceSameness=false', '--set', 'logLevel=debug']],
    ])('passes helm lint --strict with %s', async (_, args) => {
      const r = await helm(['lint', CHART, '--strict', '--namespace', NS, ...args]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    });

    it('has the version of the package, and the CRDs of manifests/crd/ byte for byte (npm run manifests copies them)', () => {
      const chart = parse(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
      expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({ version: pkg.version, appVersion: pkg.version });
      for (const file of ['serviceaccountimports.yaml', 'serviceaccountimportpolicies.yaml']) {
        const copy = readFileSync(path.join(CHART, 'files', 'crds', file), 'utf8');
        expect({ file, copy }).toEqual({ file, copy: readFileSync(path.join(ROOT, 'manifests', 'crd', file), 'utf8') });
      }
    });

    it("takes a policy's spec with the constraints of the ServiceAccountImportPolicy CRD's schema", () => {
      interface Node {
        type?: string | string[];
        properties?: Record<string, Node>;
        items?: Node;
        [constraint: string]: unknown;
      }
      const constraints = (n: Node): unknown => {
        const kept = ['pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'enum'].filter((c) => n[c] !== undefined).map((c) => [c, n[c]]);
        return {
          type: Array.isArray(n.type) ? n.type.filter((t) => t !== 'null') : [n.type],
          required: [...((n.required as string[] | undefined) ?? [])].sort(),
          ...Object.fromEntries(kept),
          ...(n.items ? { items: constraints(n.items) } : {}),
          ...(n.properties ? { properties: Object.fromEntries(Object.entries(n.properties).map(([k, v]) => [k, constraints(v)])) } : {}),
        };
      };
      const crd = parse(readFileSync(path.join(ROOT, 'manifests', 'crd', 'serviceaccountimportpolicies.yaml'), 'utf8')) as {
        spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: Node } } } }[] };
      };
      const values = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as { definitions: { importPolicySpec: Node } };
      expect(constraints(values.definitions.importPolicySpec)).toEqual(constraints(crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec));
    });
  });

  it('renders exactly the objects of install.yaml with default values and --namespace multicluster-service-account', () => {
    expect(changes(install, defaults)).toEqual([]);
    expect(defaults.map(objectKey).sort()).toEqual(install.map(objectKey).sort());
  });

  describe('a value changes exactly what it is for', () => {
    const container = 'spec.template.spec.containers[0]';
    const deployments = () => [keyOf('Deployment', CONTROLLER), keyOf('Deployment', WEBHOOK)];
    const envPath = (deployment: string, name: string) => {
      const d = install.find((o) => objectKey(o) === deployment) as unknown as { spec: { template: { spec: { containers: { env: { name: string }[] }[] } } } };
      return `${container}.env[${d.spec.template.spec.containers[0]!.env.findIndex((e) => e.name === name)}].value`;
    };
    const field = (object: string, p: string, from: unknown, to: unknown): Change => ({ object, path: p, from, to });
    const expectChanges = async (args: string[], expected: Change[]) => {
      expect(changes(defaults, await render(args))).toEqual(sorted(expected));
    };

    it('image: repository, tag and pull policy of both Deployments', async () => {
      await expectChanges(
        ['--set', 'image.repository=registry.example.com:5000/mcsa', '--set', 'image.tag=1.2.3', '--set', 'image.pullPolicy=Always'],
        deployments().flatMap((d) => [
          field(d, `${container}.image`, 'ghcr.io/multicluster-service-account/multicluster-service-account:0.1.0', 'registry.example.com:5000/mcsa:1.2.3'),
          field(d, `${container}.imagePullPolicy`, undefined, 'Always'),
        ]),
      );
    });

    it('replicas of the controller and of the webhook', async () => {
      await expectChanges(['--set', 'controller.replicas=3', '--set', 'webhook.replicas=4'], [
        field(keyOf('Deployment', CONTROLLER), 'spec.replicas', 2, 3),
        field(keyOf('Deployment', WEBHOOK), 'spec.replicas', 2, 4),
      ]);
    });

    it('a single webhook replica: no PodDisruptionBudget for it (minAvailable: 1 would block every drain)', async () => {
      await expectChanges(['--set', 'webhook.replicas=1'], [
        field(keyOf('Deployment', WEBHOOK), 'spec.replicas', 2, 1),
        { object: keyOf('PodDisruptionBudget', WEBHOOK), removed: true },
      ]);
    });

    it('resources, merged into the defaults', async () => {
      await expectChanges(['--set', 'controller.resources.requests.cpu=200m', '--set', 'webhook.resources.limits.memory=1Gi'], [
        field(keyOf('Deployment', CONTROLLER), `${container}.resources.requests.cpu`, '50m', '200m'),
        field(keyOf('Deployment', WEBHOOK), `${container}.resources.limits.memory`, '256Mi', '1Gi'),
      ]);
    });

    it('log level: LOG_LEVEL of both processes, or of one', async () => {
      await expectChanges(
        ['--set', 'logLevel=debug'],
        deployments().map((d) => field(d, envPath(d, 'LOG_LEVEL'), 'info', 'debug')),
      );
      const webhook = keyOf('Deployment', WEBHOOK);
      await expectChanges(['--set', 'webhook.logLevel=warn'], [field(webhook, envPath(webhook, 'LOG_LEVEL'), 'info', 'warn')]);
    });

    it('namespace selector: added to, or replacing, the default; the install namespace stays excluded', async () => {
      const mwc = keyOf('MutatingWebhookConfiguration', WEBHOOK);
      const selector = 'webhooks[0].namespaceSelector';
      await expectChanges(['--set-json', 'webhook.namespaceSelector={"matchLabels":{"example.com/tenant":"true"}}'], [
        field(mwc, `${selector}.matchLabels`, undefined, { 'example.com/tenant': 'true' }),
      ]);
      await expectChanges(['--set-json', 'webhook.namespaceSelector={"matchExpressions":[{"key":"example.com/tenant","operator":"Exists"}]}'], [
        field(mwc, `${selector}.matchExpressions[0].key`, 'multicluster-service-account', 'example.com/tenant'),
        field(mwc, `${selector}.matchExpressions[0].operator`, 'In', 'Exists'),
        field(mwc, `${selector}.matchExpressions[0].values`, ['enabled'], undefined),
      ]);
    });

    describe('TLS mode files: the Secret mounted and served, no TLS RBAC, the caBundle given', () => {
      const filesMode = (): Change[] => {
        const webhook = keyOf('Deployment', WEBHOOK);
        return [
          field(webhook, `${container}.args[4]`, `--tls-secret-name=${WEBHOOK}-tls`, `--tls-cert-file=${TLS_DIR}/tls.crt`),
          field(webhook, `${container}.args[5]`, `--webhook-config-name=${WEBHOOK}`, `--tls-key-file=${TLS_DIR}/tls.key`),
          field(webhook, `${container}.volumeMounts`, undefined, [{ name: 'tls', mountPath: TLS_DIR, readOnly: true }]),
          field(webhook, 'spec.template.spec.volumes', undefined, [{ name: 'tls', secret: { secretName: 'mcsa-webhook-cert' } }]),
          // Only reading imports is left: no patch of the webhook configuration, no TLS Secret, no Lease.
          field(keyOf('ClusterRole', WEBHOOK), 'rules', (install.find((o) => objectKey(o) === keyOf('ClusterRole', WEBHOOK)) as unknown as { rules: unknown[] }).rules, [
            { apiGroups: ['multicluster.admiralty.io'], resources: ['serviceaccountimports'], verbs: ['get', 'list', 'watch'] },
          ]),
          { object: keyOf('Role', WEBHOOK), removed: true },
          { object: keyOf('RoleBinding', WEBHOOK), removed: true },
        ];
      };
      const files = ['--set', 'webhook.tls.mode=files', '--set', 'webhook.tls.secretName=mcsa-webhook-cert'];

      it('with a caBundle', async () => {
        const ca = (await createCa('helm-test-ca')).certPem;
        await expectChanges(
          [...files, '--set-file', `webhook.tls.caBundle=${scratchFile('ca.crt', ca)}`],
          [...filesMode(), field(keyOf('MutatingWebhookConfiguration', WEBHOOK), 'webhooks[0].clientConfig.caBundle', undefined, Buffer.from(ca).toString('base64'))],
        );
      });

      it("with cert-manager's CA injector", async () => {
        await expectChanges(
          [...files, '--set', `webhook.tls.injectCAFrom=${NS}/mcsa-webhook`],
          [...filesMode(), field(keyOf('MutatingWebhookConfiguration', WEBHOOK), 'metadata.annotations', undefined, { 'cert-manager.io/inject-ca-from': `${NS}/mcsa-webhook` })],
        );
      });
    });

    it('consent policies: one ServiceAccountImportPolicy per entry, its spec as given', async () => {
      const spec = {
        clusters: ['cluster2'],
        maxExpirationSeconds: 3600,
        mappings: [{ namespace: 'team-a', remoteNamespace: 'shared', serviceAccounts: ['reader'], audiences: ['vault'] }],
      };
      const policy = (name: string, s: unknown): Obj => ({
        apiVersion: 'multicluster.admiralty.io/v1alpha1',
        kind: 'ServiceAccountImportPolicy',
        metadata: { name, labels: { 'app.kubernetes.io/name': 'multicluster-service-account' } },
        spec: s,
      });
      await expectChanges(['--set-json', `importPolicies=${JSON.stringify({ 'team-a-reads-shared': spec, 'no-sameness': { namespaceSameness: false } })}`], [
        { object: 'multicluster.admiralty.io/v1alpha1/ServiceAccountImportPolicy//no-sameness', added: policy('no-sameness', { namespaceSameness: false }) },
        { object: 'multicluster.admiralty.io/v1alpha1/ServiceAccountImportPolicy//team-a-reads-shared', added: policy('team-a-reads-shared', spec) },
      ]);
    });

    it('CRDs: kept on uninstall, or left out', async () => {
      const crds = install.filter((o) => o.kind === 'CustomResourceDefinition').map(objectKey);
      expect(crds).toHaveLength(2);
      await expectChanges(['--set', 'crds.keep=true'], crds.map((c) => field(c, 'metadata.annotations', undefined, { 'helm.sh/resource-policy': 'keep' })));
      await expectChanges(['--set', 'crds.enabled=false'], crds.map((c): Change => ({ object: c, removed: true })));
    });

    it('namespace.create=false leaves the Namespace out', async () => {
      await expectChanges(['--set', 'namespace.create=false'], [{ object: keyOf('Namespace', NS), removed: true }]);
    });

    it('another release namespace: every object and every reference to the install namespace follows it', async () => {
      const other = 'mcsa-system';
      // Objects matched without their namespace (and the Namespace by kind), so that each move shows as a field change.
      const movable = (o: Obj) => `${o.apiVersion}/${o.kind}/${o.kind === 'Namespace' ? '' : o.metadata.name}`;
      const moved = changes(defaults, await render([], other), movable);
      const key = (kind: string, name: string) => movable(install.find((o) => o.kind === kind && o.metadata.name === name)!);
      const user = (sa: string) => `request.userInfo.username == 'system:serviceaccount:${NS}:${sa}'`;
      expect(moved).toEqual(
        sorted([
          ...install.filter((o) => o.metadata.namespace !== undefined).map((o) => field(movable(o), 'metadata.namespace', NS, other)),
          field(key('Namespace', NS), 'metadata.name', NS, other),
          ...['RoleBinding', 'ClusterRoleBinding'].flatMap((kind) =>
            install.filter((o) => o.kind === kind).map((o) => field(movable(o), 'subjects[0].namespace', NS, other)),
          ),
          field(key('MutatingWebhookConfiguration', WEBHOOK), 'webhooks[0].clientConfig.service.namespace', NS, other),
          field(key('MutatingWebhookConfiguration', WEBHOOK), 'webhooks[0].namespaceSelector.matchExpressions[1].values[0]', NS, other),
          field(key('ValidatingAdmissionPolicy', `${CONTROLLER}-secrets`), 'spec.matchConditions[0].expression', user(CONTROLLER), user(CONTROLLER).replace(`:${NS}:`, `:${other}:`)),
          field(key('ValidatingAdmissionPolicy', `${WEBHOOK}-configuration`), 'spec.matchConditions[0].expression', user(WEBHOOK), user(WEBHOOK).replace(`:${NS}:`, `:${other}:`)),
        ]),
      );
    });
  });

  describe('bad values are refused with a message', () => {
    const SCHEMA = "values don't meet the specifications of the schema(s)";
    it.each([
      ['an unknown log level', ['--set', 'logLevel=verbose'], SCHEMA, "at '/logLevel': value must be one of 'error', 'warn', 'info', 'debug'"],
      ['no controller replica', ['--set', 'controller.replicas=0'], SCHEMA, "at '/controller/replicas': minimum: got 0, want 1"],
      ['a TLS mode the webhook lacks', ['--set', 'webhook.tls.mode=cert-manager'], SCHEMA, "at '/webhook/tls/mode': value must be one of 'self-managed', 'files'"],
      ['an unknown pull policy', ['--set', 'image.pullPolicy=Sometimes'], SCHEMA, "at '/image/pullPolicy': value must be one of '', 'Always', 'IfNotPresent', 'Never'"],
      ['a malformed quantity', ['--set', 'webhook.resources.requests.cpu=lots'], SCHEMA, "at '/webhook/resources/requests/cpu': 'lots' does not match pattern"],
      ['a misspelt value', ['--set', 'replicaCount=3'], SCHEMA, "at '': additional properties 'replicaCount' not allowed"],
      ['a policy name that is no DNS-1123 subdomain', ['--set-json', 'importPolicies={"Team_A":{}}'], SCHEMA, "at '/importPolicies': additional properties 'Team_A' not allowed"],
      ['a policy lifetime below 600 s', ['--set', 'importPolicies.a.maxExpirationSeconds=60'], SCHEMA, "at '/importPolicies/a/maxExpirationSeconds': minimum: got 60, want 600"],
      ['a policy field the CRD lacks', ['--set', 'importPolicies.a.allowAll=true'], SCHEMA, "at '/importPolicies/a': additional properties 'allowAll' not allowed"],
      ['a mapping without its remote namespace', ['--set-json', 'importPolicies={"a":{"mappings":[{"namespace":"team-a"}]}}'], SCHEMA, "at '/importPolicies/a/mappings/0': missing property 'remoteNamespace'"],
      ['files TLS without a Secret', ['--set', 'webhook.tls.mode=files'], 'execution error', 'webhook.tls.mode=files needs webhook.tls.secretName'],
      ['files TLS without a CA', ['--set', 'webhook.tls.mode=files', '--set', 'webhook.tls.secretName=cert'], 'execution error', 'webhook.tls.mode=files needs webhook.tls.caBundle'],
      ['a certificate Secret with self-managed TLS', ['--set', 'webhook.tls.secretName=cert'], 'execution error', 'webhook.tls.secretName is only used with webhook.tls.mode=files'],
    ])('%s', async (_, args, kind, message) => {
      const r = await template(args);
      expect({ code: r.code === 0 ? 0 : 'failed', stdout: r.stdout }).toEqual({ code: 'failed', stdout: '' });
      expect(r.stderr).toContain(kind);
      expect(r.stderr).toContain(message);
    });
  });

  describe('on the API server of cluster1 (server-side apply, dry run)', () => {
    let kc: string;
    /** What this suite applied for real because it was missing (the dry runs need it), deleted afterwards. */
    const created: string[] = [];
    const prerequisites = [
      ['namespace', NS, 'manifests/namespace.yaml'],
      ['customresourcedefinition.apiextensions.k8s.io', 'serviceaccountimports.multicluster.admiralty.io', 'manifests/crd/serviceaccountimports.yaml'],
      ['customresourcedefinition.apiextensions.k8s.io', 'serviceaccountimportpolicies.multicluster.admiralty.io', 'manifests/crd/serviceaccountimportpolicies.yaml'],
    ] as const;

    beforeAll(async () => {
      kc = clusterInfo('cluster1').kubeconfigPath;
      for (const [resource, name, file] of prerequisites) {
        if ((await kubectl(kc, ['get', `${resource}/${name}`, '--ignore-not-found', '-o', 'name'])).stdout.trim() !== '') continue;
        const r = await kubectl(kc, ['apply', '--server-side', '-f', path.join(ROOT, file)]);
        expect({ file, code: r.code, stderr: r.stderr }).toEqual({ file, code: 0, stderr: '' });
        created.push(`${resource}/${name}`);
      }
      const crds = prerequisites.filter(([resource]) => resource.startsWith('customresourcedefinition')).map(([resource, name]) => `${resource}/${name}`);
      const established = await kubectl(kc, ['wait', '--for=condition=Established', '--timeout=60s', ...crds]);
      expect({ code: established.code, stderr: established.stderr }).toEqual({ code: 0, stderr: '' });
    }, 120_000);

    afterAll(async () => {
      // Deleted and waited for, so that later suites find the cluster as it was.
      for (const ref of created.reverse()) {
        const r = await kubectl(kc, ['delete', ref, '--ignore-not-found', '--wait', '--timeout=120s']);
        if (r.code !== 0) throw new Error(`cleaning up ${ref}: ${r.stderr}`);
      }
    }, 300_000);

    /** `kind.group/name` as kubectl get takes it. */
    const resourceRef = (o: Obj) => `${o.kind.toLowerCase()}${o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : ''}/${o.metadata.name}`;
    const existing = async (objects: Obj[], namespace: string) => {
      const r = await kubectl(kc, ['get', ...objects.map(resourceRef), '-n', namespace, '--ignore-not-found', '-o', 'name']);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return new Set(r.stdout.split('\n').filter((l) => l !== ''));
    };
    const dryRun = async (objects: Obj[], namespace: string) => {
      const before = await existing(objects, namespace);
      const r = await kubectl(kc, ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
      // Objects another suite applied client-side (the namespace, the CRDs) make kubectl try to move
      // their last-applied annotation to server-side apply, which a dry run cannot: a non-fatal warning.
      const stderr = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('Warning: failed to migrate kubectl.kubernetes.io/last-applied-configuration for Server-Side Apply.')).join('\n');
      expect({ code: r.code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout.trim().split('\n').sort()).toEqual(objects.map((o) => `${resourceRef(o)} serverside-applied (server dry run)`).sort());
      const after = await existing(objects, namespace);
      expect([...after].filter((x) => !before.has(x))).toEqual([]);
    };

    it('accepts the default rendering', async () => {
      await dryRun(defaults, NS);
    });

    it('accepts a non-default rendering: another namespace, files TLS, policies, other image, replicas, resources, log level and selector', async () => {
      const ns = await createTestNamespace('cluster1', 'mcsa-helm');
      try {
        const ca = (await createCa('helm-dry-run-ca')).certPem;
        const objects = await render(
          [
            ['--set', 'namespace.create=false', '--set', 'crds.keep=true'],
            ['--set', 'image.repository=registry.example.com/mcsa', '--set', 'image.tag=1.2.3', '--set', 'image.pullPolicy=IfNotPresent'],
            ['--set', 'controller.replicas=3', '--set', 'webhook.replicas=1', '--set', 'controller.resources.limits.cpu=1', '--set', 'logLevel=warn', '--set', 'webhook.logLevel=debug'],
            ['--set-json', 'webhook.namespaceSelector={"matchLabels":{"example.com/tenant":"true"}}'],
            ['--set', 'webhook.tls.mode=files', '--set', 'webhook.tls.secretName=mcsa-webhook-cert', '--set-file', `webhook.tls.caBundle=${scratchFile('dry-run-ca.crt', ca)}`],
            ['--set-json', 'importPolicies={"team-a-reads-shared":{"clusters":["cluster2"],"maxExpirationSeconds":3600,"mappings":[{"namespace":"team-a","remoteNamespace":"shared","serviceAccounts":["reader"]}]}}'],
          ].flat(),
          ns.name,
        );
        expect(objects.filter((o) => o.metadata.namespace !== undefined && o.metadata.namespace !== ns.name)).toEqual([]);
        expect(objects.some((o) => o.kind === 'ServiceAccountImportPolicy')).toBe(true);
        await dryRun(objects, ns.name);
      } finally {
        await ns.delete();
      }
    });
  });
});
