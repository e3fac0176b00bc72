// Token rotation against a real cluster2: two long-running clients call the remote API every
// 100 ms — one following the observable loader, one holding a KubeConfig loaded once by the
// promise loader — while new TokenRequest tokens are swapped into the mount. After each swap the
// previous token is revoked (its ServiceAccount deleted and recreated), so a client still sending
// it would fail: both must finish with zero failed calls.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Subscription } from 'rxjs';
import { MOUNT_ROOT_ENV, namedServiceAccountImportConfigAndNamespace, namedServiceAccountImportConfigAndNamespace$, type ConfigAndNamespace } from '../../src/config/index.js';
import { clusterInfo } from '../harness/env.js';
import { waitFor } from '../harness/https.js';
import { mountRemoteImport, mountRoot, remoteNamespace, REMOTE, type RemoteNamespace } from './config-remote.js';

const IMPORT = 'cluster2-rotating';
const ROTATIONS = 6;
const SERVICE_ACCOUNTS = ['reader-a', 'reader-b'];

let remote: RemoteNamespace;
let root: { dir: string; remove: () => Promise<void> };
const saved = { ...process.env };

beforeAll(async () => {
  remote = await remoteNamespace('cfg-rotation', SERVICE_ACCOUNTS, 1);
  root = await mountRoot('rotation');
  process.env[MOUNT_ROOT_ENV] = root.dir;
}, 60_000);

afterAll(async () => {
  process.env = { ...saved };
  await root?.remove();
  await remote?.delete();
});

interface CallLog {
  ok: number;
  failures: string[];
  /** Index of the configuration used by the last successful call. */
  lastOkConfig: number;
}

/** Calls `list` every 100 ms, one call at a time, until stopped. */
function caller(current: () => { index: number; api: CoreV1Api; namespace: string } | undefined) {
  const log: CallLog = { ok: 0, failures: [], lastOkConfig: -1 };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      const c = current();
      if (c) {
        try {
          await c.api.listNamespacedPod({ namespace: c.namespace });
          log.ok++;
          log.lastOkConfig = c.index;
        } catch (e) {
          log.failures.push(e instanceof ApiException ? `HTTP ${e.code}` : e instanceof Error ? e.message : String(e));
        }
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, 100);
      });
    }
  })();
  return {
    log,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}

/** A KubeConfig that sends `token` inline to cluster2 (to check that a revoked token is refused). */
function inlineTokenApi(token: string): CoreV1Api {
  const c = clusterInfo(REMOTE);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: c.server, caData: Buffer.from(c.caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc.makeApiClient(CoreV1Api);
}

const statusOf = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: unknown) => (e instanceof ApiException ? e.code : -1),
  );

describe('token rotation through the mount', () => {
  let subscription: Subscription | undefined;
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    subscription?.unsubscribe();
    for (const stop of stops) await stop();
  });

  it(`keeps 0 failed calls across ${ROTATIONS} rotations with the old token revoked each time`, async () => {
    let token = await remote.mint(SERVICE_ACCOUNTS[0]!);
    await mountRemoteImport(root.dir, IMPORT, remote.namespace, token);

    // Client 1: follows the observable loader, switching to each new emission.
    const emissions: { index: number; api: CoreV1Api; namespace: string; at: number }[] = [];
    const errors: unknown[] = [];
    subscription = namedServiceAccountImportConfigAndNamespace$(IMPORT).subscribe({
      next: ({ kubeConfig, namespace }: ConfigAndNamespace) => emissions.push({ index: emissions.length, api: kubeConfig.makeApiClient(CoreV1Api), namespace, at: Date.now() }),
      error: (e: unknown) => errors.push(e),
    });
    const observing = caller(() => emissions.at(-1));
    stops.push(observing.stop);

    // Client 2: one KubeConfig from the promise loader, kept for the whole test.
    const once = await namedServiceAccountImportConfigAndNamespace(IMPORT);
    const holding = caller(() => ({ index: 0, api: once.kubeConfig.makeApiClient(CoreV1Api), namespace: once.namespace }));
    stops.push(holding.stop);

    await waitFor('both clients to succeed with the first token', () => observing.log.ok > 2 && holding.log.ok > 2, 10_000);

    const pickUpMs: number[] = [];
    for (let r = 1; r <= ROTATIONS; r++) {
      const previousSa = SERVICE_ACCOUNTS[(r - 1) % 2]!;
      const nextSa = SERVICE_ACCOUNTS[r % 2]!;
      const previousToken = token;
      token = await remote.mint(nextSa);
      const before = emissions.length;
      const okBefore = holding.log.ok;
      const swappedAt = Date.now();
      await mountRemoteImport(root.dir, IMPORT, remote.namespace, token);
      await waitFor(`rotation ${r}: a new emission`, () => emissions.length > before, 1000, 10);
      pickUpMs.push(emissions.at(-1)!.at - swappedAt);
      await waitFor(`rotation ${r}: the observing client to succeed with the new configuration`, () => observing.log.lastOkConfig >= before, 5000, 20);
      await waitFor(`rotation ${r}: the holding client to succeed after the swap`, () => holding.log.ok > okBefore + 1, 5000, 20);

      // Revoke the previous token: deleting its ServiceAccount invalidates every token bound to it.
      await remote.recreateServiceAccount(previousSa);
      await waitFor(`rotation ${r}: the previous token to be refused`, async () => (await statusOf(inlineTokenApi(previousToken).listNamespacedPod({ namespace: remote.namespace }))) === 401, 10_000, 100);
      const okAfterRevoke = { observing: observing.log.ok, holding: holding.log.ok };
      await waitFor(
        `rotation ${r}: both clients to keep succeeding after the revocation`,
        () => observing.log.ok > okAfterRevoke.observing + 2 && holding.log.ok > okAfterRevoke.holding + 2,
        5000,
        20,
      );
    }

    await observing.stop();
    await holding.stop();
    expect(errors).toEqual([]);
    expect(observing.log.failures).toEqual([]);
    expect(holding.log.failures).toEqual([]);
    expect(emissions.length).toBe(ROTATIONS + 1);
    expect(Math.max(...pickUpMs)).toBeLessThan(1000);
    process.stderr.write(
      `rotation: ${ROTATIONS} rotations, observing client ${observing.log.ok} calls ok / 0 failed, ` +
        `holding client ${holding.log.ok} ok / 0 failed, new config emitted ${Math.min(...pickUpMs)}–${Math.max(...pickUpMs)} ms after each swap\n`,
    );
  }, 180_000);
});
