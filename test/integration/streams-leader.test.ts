import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { combineLatest, type Subscription } from 'rxjs';
import { startLeaderElection, type LeaderElector } from '../../streams/leader.js';
import { adminKubeConfig, clusterInfo, createTestNamespace, kubectl } from '../harness/env.js';
import { waitFor } from '../harness/https.js';

jest.setTimeout(60_000);

const CLUSTER = 'cluster1';
const TIMING = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 300 };

describe('Lease leader election on a real API server', () => {
  let kc: KubeConfig;
  let ns: { name: string; delete: () => Promise<void> };
  const electors: LeaderElector[] = [];
  const subs: Subscription[] = [];
  let overlaps = 0;

  beforeAll(async () => {
    kc = adminKubeConfig(CLUSTER);
    ns = await createTestNamespace(CLUSTER, 'streams-leader');
  });

  afterAll(async () => {
    subs.forEach((s) => s.unsubscribe());
    await Promise.all(electors.map((e) => e.stop()));
    await ns.delete();
  });

  function elector(identity: string, lease = 'controller'): LeaderElector {
    const e = startLeaderElection({ kubeConfig: kc, namespace: ns.name, name: lease, identity, ...TIMING });
    electors.push(e);
    return e;
  }

  /** Counts every moment at which two electors believed they led at once. */
  function watchForOverlap(...es: LeaderElector[]): void {
    subs.push(combineLatest(es.map((e) => e.isLeader$)).subscribe((flags) => {
      if (flags.filter(Boolean).length > 1) overlaps++;
    }));
  }

  async function readLease(name = 'controller') {
    const r = await kubectl(clusterInfo(CLUSTER).kubeconfigPath, ['-n', ns.name, 'get', 'lease', name, '-o', 'json']);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { spec: { holderIdentity?: string; leaseTransitions?: number; renewTime: string; acquireTime: string; leaseDurationSeconds: number } };
  }

  const leaders = (es: LeaderElector[]) => es.filter((e) => e.isLeader);

  it('elects exactly one of two electors, visible in the Lease', async () => {
    const a = elector('replica-a');
    const b = elector('replica-b');
    watchForOverlap(a, b);
    await waitFor('a leader', () => leaders([a, b]).length === 1, 10_000);
    const leader = leaders([a, b])[0]!;
    // Several renew periods pass with the same single leader.
    const renewTime = (await readLease()).spec.renewTime;
    await waitFor('a few renewals', async () => (await readLease()).spec.renewTime !== renewTime, 5_000);
    expect(leaders([a, b])).toEqual([leader]);
    const lease = await readLease();
    expect(lease.spec.holderIdentity).toBe(leader.identity);
    expect(lease.spec.leaseDurationSeconds).toBe(2);
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
    expect(overlaps).toBe(0);
  });

  it('hands over at once when the leader stops and releases the Lease', async () => {
    const [a, b] = electors as [LeaderElector, LeaderElector];
    const leader = a.isLeader ? a : b;
    const standby = leader === a ? b : a;
    const transitions = (await readLease()).spec.leaseTransitions ?? 0;
    const t0 = Date.now();
    await leader.stop();
    await waitFor('the standby to lead', () => standby.isLeader, 5_000);
    const handoverMs = Date.now() - t0;
    expect(handoverMs).toBeLessThan(TIMING.leaseDurationMs);
    const lease = await readLease();
    expect(lease.spec.holderIdentity).toBe(standby.identity);
    expect(lease.spec.leaseTransitions).toBe(transitions + 1);
    expect(overlaps).toBe(0);
    process.stderr.write(`released Lease handed over in ${handoverMs} ms\n`);
  });

  it('takes over from a leader that vanished only after the lease duration', async () => {
    const survivor = electors.find((e) => e.isLeader)!;
    await survivor.stop({ release: false });
    expect((await readLease()).spec.holderIdentity).toBe(survivor.identity);
    const t0 = Date.now();
    const c = elector('replica-c');
    await waitFor('the new elector to lead', () => c.isLeader, TIMING.leaseDurationMs + 5_000);
    const takeoverMs = Date.now() - t0;
    expect(takeoverMs).toBeGreaterThanOrEqual(TIMING.leaseDurationMs - 50);
    expect((await readLease()).spec.holderIdentity).toBe('replica-c');
    process.stderr.write(`abandoned Lease taken over in ${takeoverMs} ms\n`);
  });

  it('clears the holder on stop', async () => {
    const c = electors.find((e) => e.isLeader)!;
    const seen: boolean[] = [];
    const sub = c.isLeader$.subscribe({ next: (v) => seen.push(v) });
    await c.stop();
    sub.unsubscribe();
    expect(seen).toEqual([true, false]);
    expect((await readLease()).spec.holderIdentity ?? '').toBe('');
    const api = kc.makeApiClient(CoordinationV1Api);
    const lease = await api.readNamespacedLease({ namespace: ns.name, name: 'controller' });
    expect(lease.spec?.leaseTransitions).toBeGreaterThanOrEqual(2);
  });
});
