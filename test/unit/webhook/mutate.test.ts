import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { IMPORT_ANNOTATION, MOUNT_ROOT } from '../../../src/constants.js';
import { configMapNameForImport, dns1123LabelError, isDns1123Subdomain, mountPathForImport, secretNameForImport, volumeNameForImport } from '../../../src/naming.js';
import type { Pod } from '../../../src/webhook/admission.js';
import { annotationEntries, mountPatch, validateEntries, type ImportFound } from '../../../src/webhook/mutate.js';
import { planAdmission, completeAdmission, decodeReview, BadReview } from '../../../src/webhook/review.js';
import { federatedImportObject, importObject } from './fixtures.js';
import { applied, fullPodPatch, mountImports } from './reference.js';

const NS = 'team-a';
const AUDIENCE = 'multicluster.admiralty.io/cluster2';
const FEDERATED_ITEMS = ['ca.crt', 'server', 'namespace', 'config'].map((key) => ({ key, path: key }));
const ready = (name: string): ImportFound => ({ name, import: importObject(NS, name, true) });

function pod(spec: Partial<Pod['spec']> = {}, annotation?: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: NS, ...(annotation !== undefined ? { annotations: { [IMPORT_ANNOTATION]: annotation } } : {}) },
    spec: { containers: [{ name: 'app' }], ...spec },
  };
}

/** What admission does to a pod: mountPatch's operations, applied. */
function admit(p: Pod, found: ImportFound[]) {
  const r = mountPatch(p, NS, found);
  return r.allowed ? { ...r, pod: applied(p, r.patch) } : r;
}

function review(object: unknown, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: NS, object, ...extra },
  };
}

/** The annotation's entries as admission reads them: split, trimmed, de-duplicated, then validated. */
const parseImportAnnotation = (value: string | undefined) => validateEntries(annotationEntries(value));

describe('annotationEntries and validateEntries', () => {
  it('splits on commas, trims, drops empty entries and de-duplicates, keeping order', () => {
    expect(parseImportAnnotation(' b , a,,b, ,c ')).toEqual({ names: ['b', 'a', 'c'], invalid: [] });
    expect(parseImportAnnotation('')).toEqual({ names: [], invalid: [] });
    expect(parseImportAnnotation(undefined)).toEqual({ names: [], invalid: [] });
  });

  it('accepts DNS-1123 subdomains (dots included) and reports everything else with a reason', () => {
    const long = 'x'.repeat(254);
    const r = parseImportAnnotation(`ok.name, Bad, -lead, trail-, under_score, ${long}, a..b`);
    expect(r.names).toEqual(['ok.name']);
    expect(r.invalid.map((i) => i.entry)).toEqual(['Bad', '-lead', 'trail-', 'under_score', long, 'a..b']);
    expect(r.invalid.find((i) => i.entry === long)?.reason).toContain('at most 253');
  });

  it('never returns an invalid name nor a duplicate (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom('a', 'b.c', ' a ', '', 'A')), { maxLength: 12 }), (entries) => {
        const { names } = parseImportAnnotation(entries.join(','));
        expect(new Set(names).size).toBe(names.length);
        for (const n of names) expect(isDns1123Subdomain(n)).toBe(true);
      }),
    );
  });
});

describe('mounting imports (mountPatch, applied)', () => {
  it('adds one read-only secret volume per import and mounts it in every container and init container', () => {
    const p = pod({ initContainers: [{ name: 'init' }], containers: [{ name: 'a' }, { name: 'b', volumeMounts: [{ name: 'x', mountPath: '/x' }] }], volumes: [{ name: 'x' }] });
    const r = admit(p, [ready('one'), ready('two.dots')]);
    if (!r.allowed) throw new Error(r.problems.join());
    expect(r.pod.spec.volumes).toEqual([
      { name: 'x' },
      { name: volumeNameForImport('one'), secret: { secretName: secretNameForImport('one') } },
      { name: volumeNameForImport('two.dots'), secret: { secretName: secretNameForImport('two.dots') } },
    ]);
    for (const c of [...r.pod.spec.initContainers!, ...r.pod.spec.containers]) {
      expect(c.volumeMounts).toEqual(
        expect.arrayContaining([
          { name: volumeNameForImport('one'), mountPath: `${MOUNT_ROOT}/one`, readOnly: true },
          { name: volumeNameForImport('two.dots'), mountPath: `${MOUNT_ROOT}/two.dots`, readOnly: true },
        ]),
      );
    }
    expect(r.pod.spec.containers[1]!.volumeMounts![0]).toEqual({ name: 'x', mountPath: '/x' });
    // The input is not modified.
    expect(p.spec.volumes).toEqual([{ name: 'x' }]);
    expect(p.spec.containers[0]!.volumeMounts).toBeUndefined();
  });

  it('is idempotent: an already-mounted pod gives an empty patch', () => {
    const once = admit(pod({ initContainers: [{ name: 'i' }] }), [ready('one'), ready('two')]);
    if (!once.allowed) throw new Error('denied');
    const twice = mountPatch(once.pod, NS, [ready('one'), ready('two')]);
    expect(twice).toMatchObject({ allowed: true, patch: [] });
  });

  it('mounts into a container added after the first pass (reinvocation)', () => {
    const once = admit(pod(), [ready('one')]);
    if (!once.allowed) throw new Error('denied');
    const withSidecar = { ...once.pod, spec: { ...once.pod.spec, containers: [...once.pod.spec.containers, { name: 'injected' }] } };
    const again = mountPatch(withSidecar, NS, [ready('one')]);
    if (!again.allowed) throw new Error('denied');
    expect(again.patch).toEqual([
      { op: 'add', path: '/spec/containers/1/volumeMounts', value: [{ name: volumeNameForImport('one'), mountPath: mountPathForImport('one'), readOnly: true }] },
    ]);
  });

  it('denies a volume-name clash and a mount-path clash, naming the container and volume', () => {
    const vol = mountPatch(pod({ volumes: [{ name: volumeNameForImport('one'), secret: { secretName: 'other' } }] }), NS, [ready('one')]);
    expect(vol).toEqual({ allowed: false, problems: [`volume "${volumeNameForImport('one')}" already exists and is not the Secret volume of service account import "one"`] });
    const mount = mountPatch(pod({ initContainers: [{ name: 'init', volumeMounts: [{ name: 'mine', mountPath: `${mountPathForImport('one')}//` }] }] }), NS, [ready('one')]);
    expect(mount.allowed).toBe(false);
    expect(!mount.allowed && mount.problems[0]).toContain('init container "init" already mounts volume "mine" at');
  });

  it('denies missing imports (all of them named) and warns about not-Ready ones', () => {
    const r = mountPatch(pod(), NS, [{ name: 'gone', import: undefined }, ready('ok'), { name: 'gone2', import: undefined }]);
    expect(r).toEqual({
      allowed: false,
      problems: [`service account import "gone" not found in namespace "${NS}"`, `service account import "gone2" not found in namespace "${NS}"`],
    });
    const w = mountPatch(pod(), NS, [{ name: 'slow', import: importObject(NS, 'slow', undefined) }]);
    expect(w.allowed && w.warnings).toEqual([
      `service account import "slow" in namespace "${NS}" is not Ready (not reconciled yet); the pod's containers will wait for Secret "${secretNameForImport('slow')}"`,
    ]);
  });

  it('keeps warnings short and on one line', () => {
    const sai = importObject(NS, 'x', false);
    sai.status!.conditions![0]!.message = 'line one\nline two ' + 'z'.repeat(1000);
    const r = mountPatch(pod(), NS, [{ name: 'x', import: sai }]);
    expect(r.allowed).toBe(true);
    const w = r.allowed ? r.warnings[0]! : '';
    expect(w.length).toBeLessThanOrEqual(256);
    expect(w).not.toContain('\n');
  });

  it('volume names are distinct DNS-1123 labels (property)', () => {
    const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,80}[a-z0-9])?$/).filter(isDns1123Subdomain);
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 5 }), fc.nat(3), fc.nat(2), (names, nContainers, nInit) => {
        const p = pod({
          containers: Array.from({ length: nContainers + 1 }, (_, i) => ({ name: `c${i}` })),
          ...(nInit > 0 ? { initContainers: Array.from({ length: nInit }, (_, i) => ({ name: `i${i}` })) } : {}),
        });
        const r = admit(p, names.map(ready));
        if (!r.allowed) throw new Error(r.problems.join());
        const vols = r.pod.spec.volumes!.map((v) => v.name);
        expect(new Set(vols).size).toBe(names.length);
        for (const v of vols) expect(dns1123LabelError(v)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe('mountPatch', () => {
  // Pods built to exercise every rule: imports already mounted, volume-name and mount-path clashes
  // (trailing slashes included), containers with and without volumeMounts, missing lists.
  const importName = fc.constantFrom('one', 'two.dots', 'three');
  const mount = fc.oneof(
    fc.record({ name: fc.constantFrom('data', 'cache'), mountPath: fc.constantFrom('/data', '/cache/', '/') }),
    importName.map((n) => ({ name: volumeNameForImport(n), mountPath: mountPathForImport(n), readOnly: true })),
    fc.tuple(importName, fc.constantFrom('', '/', '//')).map(([n, slashes]) => ({ name: 'mine', mountPath: mountPathForImport(n) + slashes })),
  );
  const containers = (prefix: string, minLength: number) =>
    fc
      .array(fc.record({ volumeMounts: fc.array(mount, { maxLength: 3 }) }, { requiredKeys: [] }), { minLength, maxLength: 3 })
      .map((cs) => cs.map((c, i) => ({ name: `${prefix}${i}`, image: 'registry.example.com/app:1', ...c })));
  const volume = fc.oneof(
    fc.constant({ name: 'data', emptyDir: {} }),
    importName.map((n) => ({ name: volumeNameForImport(n), secret: { secretName: secretNameForImport(n) } })),
    importName.map((n) => ({ name: volumeNameForImport(n), secret: { secretName: 'someone-else' } })),
    importName.map((n) => ({ name: volumeNameForImport(n), emptyDir: {} })),
    // A federated import's projected volume, as an earlier admission (reinvocation) left it.
    importName.map((n) => ({
      name: volumeNameForImport(n),
      projected: { sources: [{ configMap: { name: configMapNameForImport(n), items: FEDERATED_ITEMS } }, { serviceAccountToken: { path: 'token', audience: AUDIENCE, expirationSeconds: 3600 } }] },
    })),
  );
  // Fields in the order the API server writes them (volumes, initContainers, containers), the order
  // in which a whole-pod diff lists its operations.
  const spec = fc
    .record({ volumes: fc.array(volume, { maxLength: 3 }), initContainers: containers('init', 0), containers: containers('c', 1) }, { requiredKeys: ['containers'] })
    .map((s) => ({ ...s, restartPolicy: 'Always' }));
  // Distinct names, as the annotation's entries are (one import is one kind, Token or Federated).
  const found = fc.uniqueArray(
    fc.record({
      name: importName,
      state: fc.oneof({ arbitrary: fc.constant('ready'), weight: 8 }, { arbitrary: fc.constant('federated'), weight: 4 }, fc.constant('not ready'), fc.constant('federated not ready'), fc.constant('missing')),
    }),
    { minLength: 1, maxLength: 3, selector: (f) => f.name },
  );
  const lookedUp = (fs: { name: string; state: string }[]): ImportFound[] =>
    fs.map(({ name, state }) => ({
      name,
      import: state === 'missing' ? undefined : state.startsWith('federated') ? federatedImportObject(NS, name, state === 'federated', AUDIENCE) : importObject(NS, name, state === 'ready'),
    }));

  it('is the whole-pod diff to the pod the reference implementation mounts, in its order, and its JSON text is the operations (property)', () => {
    let mutated = 0;
    fc.assert(
      fc.property(spec, found, (s, fs) => {
        const p: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: NS }, spec: s };
        const before = structuredClone(p);
        const imports = lookedUp(fs);
        const reference = mountImports(p, NS, imports);
        const patched = mountPatch(p, NS, imports);
        expect(p).toEqual(before); // pure
        if (!reference.allowed) {
          // The same problems, in the same order (the webhook's say more about a federated import not Ready).
          if (patched.allowed) throw new Error(`allowed where the reference denies: ${reference.problems.join()}`);
          expect(patched.problems).toHaveLength(reference.problems.length);
          reference.problems.forEach((p, i) => expect(patched.problems[i]).toContain(p));
          return;
        }
        if (!patched.allowed) throw new Error(patched.problems.join());
        expect(patched.patch).toEqual(fullPodPatch(p, reference.pod));
        expect(applied(p, patched.patch)).toEqual(reference.pod);
        expect(patched.mounted).toEqual(reference.mounted);
        // One warning per import that is not Ready, naming it, in the annotation's order.
        expect(patched.warnings).toHaveLength(reference.notReady.length);
        reference.notReady.forEach((name, i) => expect(patched.warnings[i]).toContain(`service account import "${name}" in namespace "${NS}" is not Ready`));
        if (patched.patch.length > 0) mutated++;
      }),
      { numRuns: 500 },
    );
    expect(mutated).toBeGreaterThan(50); // the property did not only see denials
  });

  it('lists containers last to first, then init containers, then volumes, whatever the field order', () => {
    const p = pod({ containers: [{ name: 'a' }, { name: 'b', volumeMounts: [{ name: 'x', mountPath: '/x' }] }], initContainers: [{ name: 'i' }] });
    const r = mountPatch(p, NS, [ready('one')]);
    const m = mountImports(p, NS, [ready('one')]);
    if (!r.allowed || !m.allowed) throw new Error('denied');
    expect(r.patch.map((o) => o.path)).toEqual(['/spec/containers/1/volumeMounts/1', '/spec/containers/0/volumeMounts', '/spec/initContainers/0/volumeMounts', '/spec/volumes']);
    expect(applied(p, r.patch)).toEqual(m.pod);
  });
});

describe('planAdmission / completeAdmission', () => {
  it('uses the request namespace when the pod has none (pods created by controllers)', () => {
    const p = pod({}, 'one');
    delete p.metadata!.namespace;
    const plan = planAdmission(decodeReview(review(p)));
    expect(plan).toMatchObject({ kind: 'lookup', namespace: NS, names: ['one'] });
  });

  it('lets other kinds, operations and subresources through untouched', () => {
    for (const extra of [{ operation: 'UPDATE' }, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, { subResource: 'ephemeralcontainers', operation: 'CREATE' }]) {
      const plan = planAdmission(decodeReview(review(pod({}, 'one'), extra)));
      expect(plan).toEqual({ kind: 'answer', mutated: false, response: { uid: 'u-1', allowed: true } });
    }
  });

  it('rejects a pod that does not decode as a BadReview naming the field', () => {
    expect(() => planAdmission(decodeReview(review({ metadata: {}, spec: { containers: 'nope' } })))).toThrow(BadReview);
    expect(() => planAdmission(decodeReview(review({ metadata: {}, spec: { containers: 'nope' } })))).toThrow(/request.object is not a valid Pod: .*spec.containers/);
    expect(() => planAdmission(decodeReview(review(undefined)))).toThrow('request.object: expected the Pod being created, got missing');
  });

  it('answers with a base64 JSON Patch and echoes the uid', () => {
    const plan = planAdmission(decodeReview(review(pod({}, 'one'))));
    if (plan.kind !== 'lookup') throw new Error('expected a lookup');
    const { response, mutated } = completeAdmission(plan, [ready('one')]);
    expect(mutated).toBe(true);
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as unknown[];
    expect(ops).toHaveLength(2);
  });
});

describe('mountPatch for federated imports (ADR 0022)', () => {
  const federated = (name: string): ImportFound => ({ name, import: federatedImportObject(NS, name, true, AUDIENCE) });

  it('mounts a projected volume of the import\'s ConfigMap and the pod\'s own token, at the usual path and volume name', () => {
    const r = admit(pod(), [federated('fed')]);
    if (!r.allowed) throw new Error(r.problems.join());
    expect(r.pod.spec.volumes).toEqual([
      {
        name: volumeNameForImport('fed'),
        projected: {
          sources: [
            { configMap: { name: configMapNameForImport('fed'), items: FEDERATED_ITEMS } },
            { serviceAccountToken: { path: 'token', audience: AUDIENCE, expirationSeconds: 3600 } },
          ],
        },
      },
    ]);
    expect(r.pod.spec.containers[0]!.volumeMounts).toEqual([{ name: volumeNameForImport('fed'), mountPath: `${MOUNT_ROOT}/fed`, readOnly: true }]);
    expect(r.warnings).toEqual([]);
    expect(r.mounted).toEqual(['fed']);
  });

  it('mounts token and federated imports side by side in a mixed pod, and is idempotent on reinvocation', () => {
    const p = pod({ initContainers: [{ name: 'init' }] });
    const found = [ready('tok'), federated('fed')];
    const r = admit(p, found);
    if (!r.allowed) throw new Error(r.problems.join());
    const byName = new Map(r.pod.spec.volumes!.map((v) => [v.name, v]));
    expect(byName.get(volumeNameForImport('tok'))).toEqual({ name: volumeNameForImport('tok'), secret: { secretName: secretNameForImport('tok') } });
    expect(byName.get(volumeNameForImport('fed'))!.projected!.sources![0]!.configMap!.name).toBe(configMapNameForImport('fed'));
    for (const c of [...r.pod.spec.containers, ...r.pod.spec.initContainers!]) expect(c.volumeMounts!.map((m) => m.mountPath)).toEqual([`${MOUNT_ROOT}/tok`, `${MOUNT_ROOT}/fed`]);
    const again = mountPatch(r.pod, NS, found);
    expect(again).toMatchObject({ allowed: true, patch: [] });
  });

  it('denies a pod naming a federated import that is not Ready (its audience is not known), naming the import and why', () => {
    const r = mountPatch(pod(), NS, [ready('tok'), { name: 'fed', import: federatedImportObject(NS, 'fed', false) }]);
    expect(r.allowed).toBe(false);
    if (r.allowed) return;
    expect(r.problems).toEqual([expect.stringMatching(/^federated service account import "fed" in namespace "team-a" is not Ready \(ClusterNotFound: federated source "cluster2" is not known\); its token audience is not known yet$/)]);
  });

  it('denies a federated import whose status is Ready but lacks the audience (written before it was federated)', () => {
    const sai = federatedImportObject(NS, 'fed', true);
    delete sai.status!.audience;
    const r = mountPatch(pod(), NS, [{ name: 'fed', import: sai }]);
    expect(r).toMatchObject({ allowed: false, problems: [expect.stringContaining('federated service account import "fed"')] });
  });

  it('refuses a volume of the import\'s name that holds the Secret of the token import it was before', () => {
    const p = pod({ volumes: [{ name: volumeNameForImport('fed'), secret: { secretName: secretNameForImport('fed') } }] });
    const r = mountPatch(p, NS, [federated('fed')]);
    expect(r).toMatchObject({ allowed: false, problems: [`volume "${volumeNameForImport('fed')}" already exists and is not the projected volume of service account import "fed"`] });
  });
});
