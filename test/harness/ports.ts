import { mkdirSync, openSync, closeSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const RESERVATIONS = path.join(os.tmpdir(), 'mcsa-port-reservations');
const HOLD_MS = 2 * 60_000;

function tryReserve(port: number): boolean {
  mkdirSync(RESERVATIONS, { recursive: true });
  const file = path.join(RESERVATIONS, String(port));
  try {
    const age = Date.now() - statSync(file).mtimeMs;
    if (age < HOLD_MS) return false;
    unlinkSync(file);
  } catch {
    // no reservation yet
  }
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    return false;
  }
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A free loopback port, reserved for two minutes in a file shared by every process on the
 * machine, so that parallel test runs never hand out the same port twice.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await ephemeralPort();
    if (tryReserve(port)) return port;
  }
  throw new Error('could not reserve a free loopback port after 50 tries');
}
