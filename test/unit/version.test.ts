// packageVersion finds this package's package.json from wherever the code runs: the checkout, the
// compiled library, a bundle in the npm package or in the image; and never another package's.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { packageVersion, TESTED_KUBERNETES_VERSIONS } from '../../src/version.js';
import { supportedKubernetesVersions } from '../harness/binaries.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const ours = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcsa-version-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const write = (rel: string, pkg: object) => {
  mkdirSync(path.dirname(path.join(scratch, rel)), { recursive: true });
  writeFileSync(path.join(scratch, rel), JSON.stringify(pkg));
};
const from = (rel: string) => pathToFileURL(path.join(scratch, rel)).href;

describe('packageVersion', () => {
  it("is the checkout's package.json version from the sources", () => {
    expect(packageVersion()).toBe(ours.version);
  });

  it.each([
    ['the npm package: a bundle in dist/streams/controller', 'npm/package.json', 'npm/dist/streams/controller/main.js'],
    ['the npm package: the CLI bundle', 'npm/package.json', 'npm/dist/cli/kubemcsa.js'],
    ['the image: /app/streams/webhook/main.js beside /app/package.json', 'app/package.json', 'app/streams/webhook/main.js'],
    ['the image: /app/cli/kubemcsa.js', 'app/package.json', 'app/cli/kubemcsa.js'],
  ])('finds it from %s', (_what, pkgFile, module) => {
    write(pkgFile, { name: ours.name, version: '9.8.7' });
    expect(packageVersion(from(module))).toBe('9.8.7');
  });

  it("skips another package's package.json on the way, and says unknown when there is none of its own", () => {
    write('user/package.json', { name: 'someone-elses-app', version: '1.0.0' });
    expect(packageVersion(from('user/lib/x.js'))).toBe('unknown');
    write('nested/package.json', { name: ours.name, version: '2.0.0' });
    write('nested/dist/package.json', { name: 'not-us', version: '0.0.1' });
    expect(packageVersion(from('nested/dist/cli/kubemcsa.js'))).toBe('2.0.0');
    expect(packageVersion(from('deep/a/b/c/d.js'))).toBe('unknown');
  });
});

describe('TESTED_KUBERNETES_VERSIONS', () => {
  it('are the Kubernetes versions the test control planes are built from (test/control-plane/go.mod and k8s-<minor>/go.mod), oldest first', () => {
    expect(TESTED_KUBERNETES_VERSIONS).toEqual(supportedKubernetesVersions());
    expect(supportedKubernetesVersions().length).toBeGreaterThanOrEqual(2);
  });
});
