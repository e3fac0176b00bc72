// The image writer behind `npm run image` (scripts/oci.ts): layers are tars with sorted entries,
// listed parents, owner 0 and fixed mtimes; the same inputs give the same digest; the archive is
// an OCI layout and a `docker save` manifest over the same blobs. The production layer holds the
// lockfile's runtime packages and none of the dev tools.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { readTar, tarLayer, writeImage, type Entry } from '../../scripts/oci.js';
import { NONROOT } from '../../scripts/image.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mcsa-image-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const longName = `/app/node_modules/${'a'.repeat(60)}/${'b'.repeat(60)}/index.js`;
const entries = (): Entry[] => [
  { path: '/nodejs/bin/node', type: 'file', mode: 0o755, data: Buffer.from('binary') },
  { path: '/app/main.js', type: 'file', mode: 0o644, data: Buffer.from('console.log(1)\n') },
  { path: longName, type: 'file', mode: 0o644, data: Buffer.from('x'.repeat(1000)) },
  { path: '/lib64/ld-linux-x86-64.so.2', type: 'symlink', target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
  { path: '/home/nonroot', type: 'dir', mode: 0o700, owner: 65532 },
];
const config = { user: `${NONROOT}:${NONROOT}`, workingDir: '/app', env: ['PATH=/nodejs/bin'], entrypoint: ['/nodejs/bin/node'], cmd: ['main.js'] };

describe('tarLayer', () => {
  it('lists parents before children, in sorted order, and reads back what was written', () => {
    const read = readTar(tarLayer(entries().reverse()));
    const paths = read.map((e) => e.path);
    expect(paths).toEqual([...paths].sort());
    expect(paths).toContain('/nodejs');
    expect(paths).toContain('/nodejs/bin');
    expect(paths.indexOf('/app')).toBeLessThan(paths.indexOf('/app/main.js'));
    const long = read.find((e) => e.path === longName);
    expect(long?.type === 'file' && long.data.toString()).toBe('x'.repeat(1000));
    const node = read.find((e) => e.path === '/nodejs/bin/node');
    expect(node?.type === 'file' && node.mode).toBe(0o755);
    expect(read.find((e) => e.path === '/home/nonroot')).toEqual({ path: '/home/nonroot', type: 'dir', mode: 0o700, owner: 65532 });
    const link = read.find((e) => e.path === '/lib64/ld-linux-x86-64.so.2');
    expect(link?.type === 'symlink' && link.target).toBe('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  });

  it('writes owner 0 (but where asked) and the epoch as every mtime, whatever the order of the input', () => {
    const a = tarLayer(entries().filter((e) => e.path !== '/home/nonroot'));
    expect(tarLayer(entries().filter((e) => e.path !== '/home/nonroot').reverse()).equals(a)).toBe(true);
    for (let off = 0; off + 512 <= a.length; off += 512) {
      const h = a.subarray(off, off + 512);
      if (h.subarray(257, 262).toString() !== 'ustar') continue;
      expect(h.subarray(108, 115).toString()).toBe('0000000'); // uid
      expect(h.subarray(116, 123).toString()).toBe('0000000'); // gid
      expect(h.subarray(136, 147).toString()).toBe('00000000000'); // mtime
    }
  });

  it('refuses a path listed twice', () => {
    expect(() => tarLayer([...entries(), entries()[0]!])).toThrow(/listed twice/);
  });
});

describe('writeImage', () => {
  it('gives the same digest for the same layers and a different one when a byte changes', () => {
    const a = writeImage(path.join(dir, 'a.tar'), 'localhost/x:1', [tarLayer(entries())], config);
    const b = writeImage(path.join(dir, 'b.tar'), 'localhost/x:1', [tarLayer(entries())], config);
    expect(b.digest).toBe(a.digest);
    expect(readFileSync(b.file).equals(readFileSync(a.file))).toBe(true);
    const changed = entries();
    changed[1] = { path: '/app/main.js', type: 'file', mode: 0o644, data: Buffer.from('console.log(2)\n') };
    expect(writeImage(path.join(dir, 'c.tar'), 'localhost/x:1', [tarLayer(changed)], config).digest).not.toBe(a.digest);
  });

  it('writes an OCI layout and a docker-save manifest over the same blobs, with a non-root config', () => {
    const img = writeImage(path.join(dir, 'd.tar'), 'localhost/x:1', [tarLayer(entries())], config);
    const files = new Map(readTar(readFileSync(img.file)).flatMap((e) => (e.type === 'file' ? [[e.path, e.data] as const] : [])));
    const json = (p: string) => JSON.parse(files.get(p)!.toString()) as Record<string, unknown>;
    expect(json('/oci-layout')).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = json('/index.json') as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(index.manifests[0]!.digest).toBe(img.digest);
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe('localhost/x:1');
    const manifest = json(`/blobs/sha256/${img.digest.slice(7)}`) as { config: { digest: string }; layers: { digest: string }[] };
    const [docker] = JSON.parse(files.get('/manifest.json')!.toString()) as { Config: string; Layers: string[]; RepoTags: string[] }[];
    expect(docker!.RepoTags).toEqual(['localhost/x:1']);
    expect(docker!.Config).toBe(`blobs/sha256/${manifest.config.digest.slice(7)}`);
    expect(docker!.Layers).toEqual(manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
    const cfg = json(`/${docker!.Config}`) as { os: string; architecture: string; created: string; config: { User: string }; rootfs: { diff_ids: string[] } };
    expect(cfg).toMatchObject({ os: 'linux', architecture: 'amd64', created: '1970-01-01T00:00:00.000Z', config: { User: '65532:65532' } });
    expect(cfg.rootfs.diff_ids).toEqual(manifest.layers.map((l) => l.digest));
  });
});
