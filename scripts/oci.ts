// Reproducible OCI image archives written without a container engine or a registry, the way ko
// and jib do it: every layer is a tar this code writes (entries sorted, parents listed, owner 0,
// fixed mtimes), the config carries no timestamp but the epoch, so the same inputs give the same
// digest. The archive holds both an OCI layout (oci-layout, index.json, blobs/) and a
// `docker save` manifest.json pointing at the same blobs: `ctr images import`, `docker load` and
// `podman load` all read it.
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync, lstatSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One entry of a layer, by its absolute path in the image. Everything is owned by root but a directory given an `owner` (UID = GID). */
export type Entry =
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'dir'; mode: number; owner?: number }
  | { path: string; type: 'symlink'; target: string };

export interface ImageConfig {
  user: string;
  workingDir: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  labels?: Record<string, string>;
}

export interface WrittenImage {
  ref: string;
  /** sha256 of the image manifest: the image's identity, as a registry would name it. */
  digest: string;
  file: string;
  layers: { digest: string; size: number }[];
}

const EPOCH = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
const BLOCK = 512;

function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, opts: { size: number; mode: number; typeflag: string; linkname?: string; owner?: number }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(opts.mode, 8), 100, 'ascii');
  h.write(octal(opts.owner ?? 0, 8), 108, 'ascii');
  h.write(octal(opts.owner ?? 0, 8), 116, 'ascii');
  h.write(octal(opts.size, 12), 124, 'ascii');
  h.write(octal(EPOCH, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(opts.typeflag, 156, 'ascii');
  if (opts.linkname) h.write(opts.linkname, 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

function pad(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A PAX extended header carrying `path`/`linkpath` longer than ustar's 100 bytes. */
function paxRecords(records: Record<string, string>): Buffer[] {
  const body = Buffer.concat(Object.entries(records).map(([k, v]) => {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
    return Buffer.from(`${len}${rest}`);
  }));
  return [header('PaxHeader', { size: body.length, mode: 0o644, typeflag: 'x' }), body, pad(body.length)];
}

function tarEntry(name: string, e: { typeflag: string; mode: number; data?: Buffer; linkname?: string; owner?: number }): Buffer[] {
  const out: Buffer[] = [];
  const pax: Record<string, string> = {};
  if (Buffer.byteLength(name) > 100) pax.path = name;
  if (e.linkname && Buffer.byteLength(e.linkname) > 100) pax.linkpath = e.linkname;
  if (Object.keys(pax).length > 0) out.push(...paxRecords(pax));
  const size = e.data?.length ?? 0;
  out.push(header(name, { size, mode: e.mode, typeflag: e.typeflag, linkname: e.linkname, owner: e.owner }));
  if (e.data) out.push(e.data, pad(size));
  return out;
}

/** A tar of `entries` (paths absolute in the image); missing parent directories are added (0755). */
export function tarLayer(entries: Entry[]): Buffer {
  const byPath = new Map<string, Entry>();
  for (const e of entries) {
    const p = path.posix.normalize(e.path).replace(/^\/+/, '').replace(/\/+$/, '');
    if (!p || p === '.') continue;
    if (byPath.has(p) && !(e.type === 'dir' && byPath.get(p)!.type === 'dir')) throw new Error(`image layer: ${p} listed twice`);
    byPath.set(p, { ...e, path: p });
    for (let d = path.posix.dirname(p); d !== '.'; d = path.posix.dirname(d)) {
      if (!byPath.has(d)) byPath.set(d, { path: d, type: 'dir', mode: 0o755 });
    }
  }
  const names = [...byPath.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const chunks: Buffer[] = [];
  for (const name of names) {
    const e = byPath.get(name)!;
    if (e.type === 'dir') chunks.push(...tarEntry(`${name}/`, { typeflag: '5', mode: e.mode, owner: e.owner }));
    else if (e.type === 'symlink') chunks.push(...tarEntry(name, { typeflag: '2', mode: 0o777, linkname: e.target }));
    else chunks.push(...tarEntry(name, { typeflag: '0', mode: e.mode, data: e.data }));
  }
  chunks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(chunks);
}

/** Every file, directory and symlink under `dir`, placed under `at` in the image. */
export function treeEntries(dir: string, at: string, skip: (rel: string) => boolean = () => false): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const full = path.join(dir, r);
      const st = lstatSync(full);
      const p = path.posix.join(at, r);
      if (st.isSymbolicLink()) out.push({ path: p, type: 'symlink', target: readlinkSync(full) });
      else if (st.isDirectory()) {
        out.push({ path: p, type: 'dir', mode: 0o755 });
        walk(r);
      } else if (st.isFile()) out.push({ path: p, type: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644, data: readFileSync(full) });
    }
  };
  walk('');
  return out;
}

/** Writes an image archive of `layers` with `config` to `file`, naming it `ref`. */
export function writeImage(file: string, ref: string, layers: Buffer[], config: ImageConfig): WrittenImage {
  const blobs = new Map<string, Buffer>();
  const blob = (b: Buffer) => {
    const d = sha256(b);
    blobs.set(d, b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const layerDescs = layers.map(blob);
  const configJson = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: new Date(EPOCH * 1000).toISOString(),
    config: {
      User: config.user,
      WorkingDir: config.workingDir,
      Env: config.env,
      Entrypoint: config.entrypoint,
      Cmd: config.cmd,
      ...(config.labels ? { Labels: config.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.digest) },
  }));
  const configDesc = blob(configJson);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configDesc },
    layers: layerDescs.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
  }));
  const manifestDesc = blob(manifest);
  const tag = ref.slice(ref.lastIndexOf(':') + 1);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifestDesc,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
    }],
  };
  const dockerManifest = [{
    Config: `blobs/sha256/${configDesc.digest.slice(7)}`,
    RepoTags: [ref],
    Layers: layerDescs.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
  }];
  const archive: Entry[] = [
    { path: 'oci-layout', type: 'file', mode: 0o644, data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { path: 'index.json', type: 'file', mode: 0o644, data: Buffer.from(JSON.stringify(index)) },
    { path: 'manifest.json', type: 'file', mode: 0o644, data: Buffer.from(JSON.stringify(dockerManifest)) },
    ...[...blobs].map(([d, b]): Entry => ({ path: `blobs/sha256/${d}`, type: 'file', mode: 0o644, data: b })),
  ];
  writeFileSync(file, tarLayer(archive));
  return { ref, digest: manifestDesc.digest, file, layers: layerDescs };
}

/** Reads a tar (as written here) back into entries, for tests and checks. */
export function readTar(tar: Buffer): Entry[] {
  const out: Entry[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  const str = (start: number, len: number) => tar.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');
  while (off + BLOCK <= tar.length) {
    const at = off;
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(at + 124, 12).trim() || '0', 8);
    const typeflag = str(at + 156, 1);
    const data = tar.subarray(at + BLOCK, at + BLOCK + size);
    off = at + BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (typeflag === 'x') {
      pax = {};
      for (const rec of data.toString('utf8').split('\n').filter(Boolean)) {
        const kv = rec.slice(rec.indexOf(' ') + 1);
        pax[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
      }
      continue;
    }
    const name = '/' + (pax.path ?? str(at, 100)).replace(/\/$/, '');
    const mode = parseInt(str(at + 100, 8).trim(), 8);
    const owner = parseInt(str(at + 108, 8).trim(), 8);
    if (typeflag === '5') out.push({ path: name, type: 'dir', mode, ...(owner ? { owner } : {}) });
    else if (typeflag === '2') out.push({ path: name, type: 'symlink', target: pax.linkpath ?? str(at + 157, 100) });
    else out.push({ path: name, type: 'file', mode, data: Buffer.from(data) });
    pax = {};
  }
  return out;
}
