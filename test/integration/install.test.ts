// manifests/install.yaml against the real API server of cluster1: it is what the kustomize base
// renders (same bytes, with the control plane's kubectl), the API server accepts every object of
// it (server-side apply, dry run), and `kubectl explain` shows the CRD's field docs.
// Only the Namespace and the CRD are applied for real (other suites apply them too); the dry run
// must leave nothing else behind, which is checked.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { clusterInfo, kubectl, testClusters, type RunResult } from '../harness/env.js';
import { waitFor } from '../harness/https.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const INSTALL = path.join(ROOT, 'manifests', 'install.yaml');
const CRD_NAME = 'serviceaccountimports.multicluster.admiralty.io';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}
interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

const installObjects = () =>
  parseAllDocuments(readFileSync(INSTALL, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

/** `kind.group/name` as kubectl get accepts it. */
const resourceRef = (o: Obj) => {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`;
};

function run(cmd: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

describe('manifests/install.yaml on a real API server', () => {
  let kc: string;
  let scratch: string;
  beforeAll(() => {
    kc = clusterInfo('cluster1').kubeconfigPath;
    // Outside the checkout: a clean clone has no .tmp/ (nothing else may have made it first).
    scratch = mkdtempSync(path.join(tmpdir(), 'mcsa-install-test-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is up to date: regenerating it with the control plane kubectl gives identical bytes', async () => {
    const out = path.join(scratch, 'install.yaml');
    const r = await run('bash', [path.join(ROOT, 'scripts', 'generate-install.sh'), '-o', out], { KUBECTL: testClusters().kubectl });
    expect(r).toMatchObject({ code: 0 });
    // toBe on the strings shows a readable diff; Buffer.equals pins the bytes.
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(INSTALL, 'utf8'));
    expect(readFileSync(out).equals(readFileSync(INSTALL))).toBe(true);
  });

  it('is accepted by the API server (server-side apply, dry run) and the dry run creates nothing', async () => {
    // Namespaced objects cannot be dry-run into a namespace that does not exist yet, nor custom
    // resources without their CRD: apply those two for real first (idempotent).
    for (const f of ['manifests/namespace.yaml', 'manifests/crd/serviceaccountimports.yaml']) {
      const r = await kubectl(kc, ['apply', '--server-side', '--force-conflicts', '-f', path.join(ROOT, f)]);
      expect({ f, code: r.code, stderr: r.stderr }).toEqual({ f, code: 0, stderr: '' });
    }
    const established = await kubectl(kc, ['wait', '--for=condition=Established', '--timeout=30s', `crd/${CRD_NAME}`]);
    expect(established).toMatchObject({ code: 0 });

    const objects = installObjects();
    const exists = async (o: Obj) => {
      const r = await kubectl(kc, ['get', resourceRef(o), ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []), '-o', 'name']);
      if (r.code !== 0 && !/NotFound|not found/.test(r.stderr)) throw new Error(`kubectl get ${resourceRef(o)}: ${r.stderr}`);
      return r.code === 0;
    };
    const before = await Promise.all(objects.map(exists));

    const r = await kubectl(kc, ['apply', '--server-side', '--dry-run=server', '-f', INSTALL]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(objects.length);
    for (const o of objects) {
      const applied = lines.some((l) => l.startsWith(o.kind.toLowerCase()) && l.endsWith(`/${o.metadata.name} serverside-applied (server dry run)`));
      expect({ object: resourceRef(o), applied }).toEqual({ object: resourceRef(o), applied: true });
    }

    const after = await Promise.all(objects.map(exists));
    expect(objects.filter((_, i) => after[i] && !before[i]).map(resourceRef)).toEqual([]);
  });

  describe('the webhook-ingress-cidr component (manifests/components)', () => {
    interface Policy extends Obj {
      spec: { ingress: { ports: { port: string }[]; from: Record<string, unknown>[] }[] };
    }
    /** An overlay of the base plus the component, with the CIDR ConfigMap when given; kubectl kustomize's result. */
    const render = async (name: string, cidr: string | undefined): Promise<RunResult> => {
      const dir = path.join(scratch, name);
      mkdirSync(dir, { recursive: true });
      const rel = (p: string) => path.relative(dir, path.join(ROOT, p));
      const resources = [rel('manifests'), ...(cidr === undefined ? [] : ['webhook-ingress.yaml'])];
      writeFileSync(path.join(dir, 'kustomization.yaml'), `resources:\n${resources.map((r) => `  - ${r}\n`).join('')}components:\n  - ${rel('manifests/components/webhook-ingress-cidr')}\n`);
      if (cidr !== undefined)
        writeFileSync(
          path.join(dir, 'webhook-ingress.yaml'),
          `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: webhook-ingress\n  annotations:\n    config.kubernetes.io/local-config: "true"\ndata:\n  cidr: ${cidr}\n`,
        );
      return kubectl(kc, ['kustomize', dir]);
    };
    const docs = (yaml: string) =>
      parseAllDocuments(yaml)
        .map((d) => d.toJS() as Obj | null)
        .filter((o): o is Obj => o !== null);
    const isPolicy = (o: Obj) => o.kind === 'NetworkPolicy';

    it('narrows the webhook port to the CIDR, leaves every other object as install.yaml has it, and the API server accepts it', async () => {
      const r = await render('narrowed', '10.0.0.0/28');
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const rendered = docs(r.stdout);
      const base = installObjects();
      // The ConfigMap is local configuration: not part of the output.
      expect(rendered.map(resourceRef)).toEqual(base.map(resourceRef));
      expect(rendered.filter((o) => !isPolicy(o))).toEqual(base.filter((o) => !isPolicy(o)));
      const policy = rendered.find(isPolicy) as Policy;
      const basePolicy = base.find(isPolicy) as Policy;
      expect(policy.spec.ingress[0]).toEqual({ ports: basePolicy.spec.ingress[0]!.ports, from: [{ ipBlock: { cidr: '10.0.0.0/28' } }] });
      expect(policy.spec.ingress.slice(1)).toEqual(basePolicy.spec.ingress.slice(1));
      // The Namespace exists (the test above applies it): the API server validates the policy.
      const applied = await kubectl(kc, ['apply', '--server-side', '--dry-run=server', '-f', '-'], JSON.stringify(policy));
      expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    });

    it('fails the build without the CIDR, and a malformed CIDR is refused by the API server', async () => {
      const missing = await render('missing', undefined);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('webhook-ingress');
      const bad = await render('bad', 'not-a-cidr');
      expect(bad).toMatchObject({ code: 0 });
      const policy = docs(bad.stdout).find(isPolicy)!;
      const refused = await kubectl(kc, ['apply', '--server-side', '--dry-run=server', '-f', '-'], JSON.stringify(policy));
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/cidr/i);
    });
  });

  describe('kubectl explain shows the CRD field docs', () => {
    let schema: SchemaNode;
    beforeAll(async () => {
      const crd = installObjects().find((o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === 'serviceaccountimports.multicluster.admiralty.io') as unknown as {
        spec: { versions: { name: string; schema: { openAPIV3Schema: SchemaNode } }[] };
      };
      schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
      const established = await kubectl(kc, ['apply', '--server-side', '--force-conflicts', '-f', path.join(ROOT, 'manifests/crd/serviceaccountimports.yaml')]);
      expect(established).toMatchObject({ code: 0 });
      // The aggregated OpenAPI document picks a new or changed CRD up asynchronously.
      await waitFor('kubectl explain sai.spec.expirationSeconds', async () => (await kubectl(kc, ['explain', 'sai.spec.expirationSeconds'])).code === 0, 30_000, 250);
    });

    it.each([
      ['sai.spec', (s: SchemaNode) => s.properties!.spec!],
      ['sai.spec.expirationSeconds', (s: SchemaNode) => s.properties!.spec!.properties!.expirationSeconds!],
      ['sai.status.conditions', (s: SchemaNode) => s.properties!.status!.properties!.conditions!],
    ])('%s', async (field, node) => {
      const r = await kubectl(kc, ['explain', field]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const description = node(schema).description;
      expect(description).toBeDefined();
      expect(r.stdout).toContain('GROUP:      multicluster.admiralty.io');
      expect(r.stdout).toContain('KIND:       ServiceAccountImport');
      expect(squash(r.stdout)).toContain(squash(description!));
      // Child fields are listed (with their own descriptions) for objects.
      const children = Object.keys(node(schema).properties ?? node(schema).items?.properties ?? {});
      for (const child of children) expect(r.stdout).toMatch(new RegExp(`^\\s+${child}\\b`, 'm'));
    });
  });
});
