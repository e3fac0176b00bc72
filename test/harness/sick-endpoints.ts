// Endpoints that behave like sick source clusters, for the isolation test and bench:fleet: a port
// that accepts TCP and never answers, an HTTPS server that answers every request with an error
// after a delay, and a TCP relay in front of a real API server that can be frozen (a network
// partition: existing connections stop moving bytes, new ones are accepted and never served).
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { createCa, issueCertificate } from '../../src/tls/pki.js';

/** What a registration needs to point at an endpoint. */
interface Endpoint {
  url: string;
  /** A CA the client trusts for this endpoint (the endpoint may never get as far as TLS). */
  caPem: string;
  stop(): Promise<void>;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: net.Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  return new Promise((resolve) => server.close(() => resolve()));
}

function track(sockets: Set<Socket>, socket: Socket): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => undefined);
}

/** Accepts TCP connections and never sends a byte (not even a TLS handshake). */
export async function startHangingEndpoint(): Promise<Endpoint & { connections(): number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    track(sockets, socket);
  });
  const port = await listen(server);
  const ca = await createCa('mcsa-test hanging endpoint');
  return { url: `https://127.0.0.1:${port}`, caPem: ca.certPem, connections: () => accepted, stop: () => closeServer(server, sockets) };
}

/** An HTTPS server answering every request with `status` (a Kubernetes Status body) after `delayMs`. */
export async function startFailingEndpoint(opts: { status?: number; delayMs?: number } = {}): Promise<Endpoint & { requests(): number }> {
  const status = opts.status ?? 500;
  const delayMs = opts.delayMs ?? 5_000;
  const ca = await createCa('mcsa-test failing endpoint');
  const leaf = await issueCertificate(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    requests++;
    req.resume();
    const timer = setTimeout(() => {
      timers.delete(timer);
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status, reason: 'InternalError', message: 'the sick test endpoint fails every request' });
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(body);
    }, delayMs);
    timers.add(timer);
  });
  server.on('connection', (s: Socket) => track(sockets, s));
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: ca.certPem,
    requests: () => requests,
    stop: () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return closeServer(server, sockets);
    },
  };
}

/**
 * A TCP relay to `target` (an API server's https URL): TLS passes through untouched, so the API
 * server's own CA still verifies it. `freeze()` stops every byte in both directions on existing
 * connections and holds new ones unanswered, until `thaw()`; with `newConnections: 'pass'`, only
 * the connections open at the freeze stop (one dead connection, the network itself fine).
 */
export async function startRelay(target: string, opts: { newConnections?: 'hold' | 'pass' } = {}): Promise<Omit<Endpoint, 'caPem'> & { freeze(): void; thaw(): void; readonly frozen: boolean; connections(): number }> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  const pairs: Array<{ client: Socket; upstream?: Socket }> = [];
  let frozen = false;
  let accepted = 0;
  const connect = (pair: { client: Socket; upstream?: Socket }) => {
    const upstream = net.connect(Number(targetPort), hostname);
    track(sockets, upstream);
    pair.upstream = upstream;
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    const end = () => {
      pair.client.destroy();
      upstream.destroy();
      const i = pairs.indexOf(pair);
      if (i >= 0) pairs.splice(i, 1);
    };
    upstream.on('close', end);
    pair.client.on('close', end);
  };
  const server = net.createServer((client) => {
    track(sockets, client);
    accepted++;
    const pair: { client: Socket; upstream?: Socket } = { client };
    pairs.push(pair);
    if (frozen && opts.newConnections !== 'pass') client.pause();
    else connect(pair);
  });
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}`,
    get frozen() {
      return frozen;
    },
    connections: () => accepted,
    freeze() {
      frozen = true;
      for (const p of pairs) {
        if (!p.upstream) continue;
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.pause();
        p.upstream.pause();
      }
    },
    thaw() {
      frozen = false;
      for (const p of [...pairs]) {
        if (!p.upstream) {
          p.client.resume();
          connect(p);
          continue;
        }
        p.client.pipe(p.upstream);
        p.upstream.pipe(p.client);
      }
    },
    stop: () => closeServer(server, sockets),
  };
}
