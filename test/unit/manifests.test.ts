// The install manifests meet SPEC §10's bar: every Deployment has probes, resource requests and a
// restricted security context, a PodDisruptionBudget and a ServiceAccount; the webhook
// configuration never selects the install namespace; install.yaml holds exactly the objects of
// the kustomize base, Namespace and CRD first. (That install.yaml is byte-for-byte what kustomize
// renders is checked, with the control plane's kubectl, in test/integration/install.test.ts.)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';
import { IMPORT_ANNOTATION, INSTALL_NAMESPACE } from '../../src/constants.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MANIFESTS = path.join(ROOT, 'manifests');

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  [field: string]: unknown;
}
interface SelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: SelectorRequirement[];
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  grpc?: { port: number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
}
interface Deployment extends K8sObject {
  spec: {
    selector: LabelSelector;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName?: string;
        securityContext?: SecurityContext;
        containers: Container[];
        initContainers?: Container[];
        hostNetwork?: boolean;
        hostPID?: boolean;
        hostIPC?: boolean;
      };
    };
  };
}
interface PodDisruptionBudget extends K8sObject {
  spec: { selector: LabelSelector; minAvailable?: number | string; maxUnavailable?: number | string };
}
interface Webhook {
  name: string;
  sideEffects: string;
  failurePolicy: string;
  timeoutSeconds?: number;
  namespaceSelector?: LabelSelector;
  matchConditions?: { name: string; expression: string }[];
  clientConfig: { service?: { name: string; namespace: string; port?: number; path?: string }; caBundle?: string };
}
interface MutatingWebhookConfiguration extends K8sObject {
  webhooks: Webhook[];
}
interface Service extends K8sObject {
  spec: { selector: Record<string, string>; ports: { port: number; targetPort: number | string }[] };
}

function parseFile(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${path.relative(ROOT, file)}: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/**
 * Every object of the kustomize base's source files: the resources of manifests/kustomization.yaml
 * (directories walked, without their kustomization.yaml). Components, the monitoring files and
 * other packagings beside the base are not part of it.
 */
function sourceObjects(): { file: string; object: K8sObject }[] {
  const found: { file: string; object: K8sObject }[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const e of readdirSync(p)) walk(path.join(p, e));
    } else if (/\.ya?ml$/.test(p) && path.basename(p) !== 'kustomization.yaml') {
      for (const object of parseFile(p)) found.push({ file: path.relative(ROOT, p), object });
    }
  };
  const base = parse(readFileSync(path.join(MANIFESTS, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  for (const resource of base.resources) walk(path.join(MANIFESTS, resource));
  return found;
}

const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Label selector semantics of metav1.LabelSelector (an empty selector selects everything). */
function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  const labelsOk = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const expressionsOk = (selector.matchExpressions ?? []).every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'In':
        return has && (r.values ?? []).includes(labels[r.key]!);
      case 'NotIn':
        return !has || !(r.values ?? []).includes(labels[r.key]!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
    }
  });
  return labelsOk && expressionsOk;
}

const sources = sourceObjects();
const objects = sources.map((s) => s.object);
const ofKind = <T extends K8sObject>(kind: string) => objects.filter((o): o is T => o.kind === kind);
const deployments = ofKind<Deployment>('Deployment');
const installNamespace = ofKind<K8sObject>('Namespace').find((n) => n.metadata.name === INSTALL_NAMESPACE);

describe('manifests', () => {
  it('parse, and every object has apiVersion, kind and a name; no object is defined twice', () => {
    expect(sources.length).toBeGreaterThan(10);
    for (const { file, object } of sources) {
      expect({ file, apiVersion: typeof object.apiVersion, kind: typeof object.kind, name: typeof object.metadata?.name }).toEqual({
        file,
        apiVersion: 'string',
        kind: 'string',
        name: 'string',
      });
    }
    const keys = objects.map(key);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it('put every namespaced object in the install namespace, which they define', () => {
    expect(installNamespace).toBeDefined();
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    for (const o of objects) {
      expect({ object: key(o), namespace: o.metadata.namespace }).toEqual({ object: key(o), namespace: clusterScoped.has(o.kind) ? undefined : INSTALL_NAMESPACE });
    }
  });

  it('confine the controller and webhook ServiceAccounts (the ones the Deployments run as) with denying admission policies', () => {
    const policies = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy') as unknown as { metadata: Meta; spec: { failurePolicy: string; matchConditions: { expression: string }[] } }[];
    const bindings = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding') as unknown as { spec: { policyName: string; validationActions: string[] } }[];
    const serviceAccounts = deployments.map((d) => `system:serviceaccount:${INSTALL_NAMESPACE}:${(d.spec.template.spec as { serviceAccountName?: string }).serviceAccountName}`).sort();
    const matched = policies.map((p) => /request\.userInfo\.username == '([^']+)'/.exec(p.spec.matchConditions.map((c) => c.expression).join(' '))?.[1]).sort();
    expect(matched).toEqual(serviceAccounts);
    for (const p of policies) {
      expect(p.spec.failurePolicy).toBe('Fail');
      expect(bindings.filter((b) => b.spec.policyName === p.metadata.name).map((b) => b.spec.validationActions)).toEqual([['Deny']]);
    }
  });

  it('define the controller and the webhook Deployments', () => {
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['multicluster-service-account-controller', 'multicluster-service-account-webhook']);
  });

  describe.each(deployments.map((d) => [d.metadata.name, d] as const))('Deployment %s', (_name, d) => {
    const pod = d.spec.template.spec;
    const containers = [...pod.containers, ...(pod.initContainers ?? [])];
    const effective = (c: Container): SecurityContext => ({ ...pod.securityContext, ...c.securityContext });

    it('selects its own pod template', () => {
      expect(selects(d.spec.selector, d.spec.template.metadata.labels)).toBe(true);
    });

    it('has readiness and liveness probes on ports the container declares', () => {
      for (const c of pod.containers) {
        for (const probe of [c.readinessProbe, c.livenessProbe]) {
          expect({ container: c.name, probe: probe !== undefined }).toEqual({ container: c.name, probe: true });
          const port = probe!.httpGet?.port ?? probe!.tcpSocket?.port ?? probe!.grpc?.port;
          if (typeof port === 'string') expect((c.ports ?? []).map((p) => p.name)).toContain(port);
        }
      }
    });

    it('requests CPU and memory and limits memory', () => {
      for (const c of containers) {
        expect({ container: c.name, cpu: c.resources?.requests?.cpu !== undefined, memory: c.resources?.requests?.memory !== undefined, limit: c.resources?.limits?.memory !== undefined }).toEqual({
          container: c.name,
          cpu: true,
          memory: true,
          limit: true,
        });
      }
    });

    it('runs as non-root with a read-only root filesystem, no privilege escalation and no capabilities', () => {
      for (const c of containers) {
        const sc = effective(c);
        expect({ container: c.name, runAsNonRoot: sc.runAsNonRoot, readOnlyRootFilesystem: sc.readOnlyRootFilesystem, allowPrivilegeEscalation: sc.allowPrivilegeEscalation }).toEqual({
          container: c.name,
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
        });
        expect(sc.runAsUser).not.toBe(0);
        expect(sc.privileged ?? false).toBe(false);
        expect(sc.capabilities?.drop).toContain('ALL');
        expect(sc.capabilities?.add ?? []).toEqual([]);
      }
      expect([pod.hostNetwork, pod.hostPID, pod.hostIPC].some((x) => x === true)).toBe(false);
    });

    it('uses the RuntimeDefault seccomp profile', () => {
      for (const c of containers) expect({ container: c.name, seccomp: effective(c).seccompProfile?.type }).toEqual({ container: c.name, seccomp: 'RuntimeDefault' });
    });

    it('runs as its own ServiceAccount, defined in the manifests', () => {
      expect(pod.serviceAccountName).toBeDefined();
      expect(objects.map(key)).toContain(`ServiceAccount/${d.metadata.namespace}/${pod.serviceAccountName}`);
    });

    it('runs a pinned image (no latest tag) with a `node [flags] <script>.js` command', () => {
      for (const c of containers) {
        expect(c.image).toMatch(/:[\w][\w.-]*$/);
        expect(c.image).not.toMatch(/:latest$/);
        expect(c.command?.[0]).toBe('node');
        // node, then only V8/Node flags, then the script.
        const at = (c.command ?? []).findIndex((a) => a.endsWith('.js'));
        expect(c.command?.[at]).toMatch(/^[\w/-]+\.js$/);
        expect(c.command!.slice(1, at).every((a) => a.startsWith('--'))).toBe(true);
      }
    });

    it('is covered by a PodDisruptionBudget in its namespace that selects its pods and allows an eviction', () => {
      const pdbs = ofKind<PodDisruptionBudget>('PodDisruptionBudget').filter(
        (p) => p.metadata.namespace === d.metadata.namespace && selects(p.spec.selector, d.spec.template.metadata.labels),
      );
      expect(pdbs).toHaveLength(1);
      const replicas = (d.spec as { replicas?: number }).replicas ?? 1;
      const pdb = pdbs[0]!.spec;
      // A PDB that allows no eviction at the Deployment's replica count blocks node drains.
      if (typeof pdb.minAvailable === 'number') expect(pdb.minAvailable).toBeLessThan(replicas);
      if (typeof pdb.maxUnavailable === 'number') expect(pdb.maxUnavailable).toBeGreaterThan(0);
    });
  });

  describe('MutatingWebhookConfiguration', () => {
    const mwcs = ofKind<MutatingWebhookConfiguration>('MutatingWebhookConfiguration');
    const webhooks = mwcs.flatMap((m) => m.webhooks);
    // The API server labels every namespace with its name; an admin may also (wrongly) enable it.
    const installLabels = { ...installNamespace?.metadata.labels, 'kubernetes.io/metadata.name': INSTALL_NAMESPACE };

    it('exists, with at least one webhook', () => {
      expect(mwcs).toHaveLength(1);
      expect(webhooks.length).toBeGreaterThan(0);
    });

    it('selects namespaces labelled multicluster-service-account=enabled, and no others', () => {
      for (const w of webhooks) {
        const selector = w.namespaceSelector ?? {};
        expect(selects(selector, { 'kubernetes.io/metadata.name': 'team-a', 'multicluster-service-account': 'enabled' })).toBe(true);
        expect(selects(selector, { 'kubernetes.io/metadata.name': 'team-a' })).toBe(false);
        expect(selects(selector, { 'kubernetes.io/metadata.name': 'team-a', 'multicluster-service-account': 'disabled' })).toBe(false);
      }
    });

    it('sends only pods that carry the import annotation (matchConditions): other pods never depend on the webhook', () => {
      for (const w of webhooks) {
        const conditions = w.matchConditions ?? [];
        expect(conditions).toHaveLength(1);
        expect(conditions[0]!.expression).toContain('has(object.metadata.annotations)');
        expect(conditions[0]!.expression).toContain(`'${IMPORT_ANNOTATION}' in object.metadata.annotations`);
      }
    });

    it('never selects the install namespace, even if someone labels it enabled', () => {
      for (const w of webhooks) {
        const selector = w.namespaceSelector ?? {};
        expect(selects(selector, installLabels)).toBe(false);
        expect(selects(selector, { ...installLabels, 'multicluster-service-account': 'enabled' })).toBe(false);
      }
    });

    it('has no side effects, fails closed with a short timeout and calls the webhook Service on a port it exposes', () => {
      const services = ofKind<Service>('Service');
      for (const w of webhooks) {
        expect(w.sideEffects).toBe('None');
        expect(w.failurePolicy).toBe('Fail');
        expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
        expect(w.clientConfig.caBundle).toBeUndefined();
        const ref = w.clientConfig.service!;
        const svc = services.find((s) => s.metadata.name === ref.name && s.metadata.namespace === ref.namespace);
        expect(svc).toBeDefined();
        expect(svc!.spec.ports.map((p) => p.port)).toContain(ref.port ?? 443);
        const webhook = deployments.find((d) => selects({ matchLabels: svc!.spec.selector }, d.spec.template.metadata.labels));
        const target = svc!.spec.ports.find((p) => p.port === (ref.port ?? 443))!.targetPort;
        const ports = webhook!.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
        expect(ports.some((p) => p.name === target || p.containerPort === target)).toBe(true);
      }
    });
  });

  describe('NetworkPolicy', () => {
    interface NetworkPolicy extends K8sObject {
      spec: {
        podSelector: LabelSelector;
        policyTypes: string[];
        ingress: { ports: { port: string | number }[]; from: { ipBlock?: { cidr: string }; namespaceSelector?: LabelSelector }[] }[];
      };
    }
    const policies = ofKind<NetworkPolicy>('NetworkPolicy');

    it('selects the webhook pods only, and opens only the webhook port to any address and the metrics port to labelled namespaces', () => {
      expect(policies).toHaveLength(1);
      const np = policies[0]!;
      const webhook = deployments.find((d) => d.metadata.name === 'multicluster-service-account-webhook')!;
      const controller = deployments.find((d) => d.metadata.name !== webhook.metadata.name)!;
      expect(selects(np.spec.podSelector, webhook.spec.template.metadata.labels)).toBe(true);
      expect(selects(np.spec.podSelector, controller.spec.template.metadata.labels)).toBe(false);
      expect(np.spec.policyTypes).toEqual(['Ingress']);
      const containerPorts = webhook.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.name);
      const [api, metrics] = np.spec.ingress;
      expect(api!.ports.map((p) => p.port)).toEqual(['webhook']);
      expect(api!.from.map((f) => f.ipBlock?.cidr)).toEqual(['0.0.0.0/0', '::/0']);
      expect(metrics!.ports.map((p) => p.port)).toEqual(['metrics']);
      expect(metrics!.from.every((f) => f.namespaceSelector !== undefined && f.ipBlock === undefined)).toBe(true);
      for (const rule of np.spec.ingress) for (const p of rule.ports) expect(containerPorts).toContain(p.port);
      expect(np.spec.ingress).toHaveLength(2);
    });
  });

  describe('install.yaml', () => {
    const install = parseFile(path.join(MANIFESTS, 'install.yaml'));

    it('starts with the Namespace and the CRD', () => {
      expect(install.slice(0, 2).map((o) => o.kind)).toEqual(['Namespace', 'CustomResourceDefinition']);
      expect(install.at(-1)?.kind).toBe('MutatingWebhookConfiguration');
    });

    it('holds exactly the objects of the manifests, unchanged (regenerate with npm run manifests)', () => {
      const byKey = (list: K8sObject[]) => Object.fromEntries(list.map((o) => [key(o), o]));
      expect(Object.keys(byKey(install)).sort()).toEqual(objects.map(key).sort());
      expect(byKey(install)).toEqual(byKey(objects));
    });
  });
});
