import { describe, expect, it } from '@jest/globals';
import type { V1Lease } from '@kubernetes/client-node';
import { ManualClock } from './manual-clock.js';
import { LeaseConflict, LeaseElector } from '../../../streams/leader.js';

type LeaseClient = ConstructorParameters<typeof LeaseElector>[0];

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An in-memory Lease with optimistic concurrency, serialised like the API server's JSON. */
class LeaseStore {
  lease: V1Lease | undefined;
  json: string | undefined;
  private rv = 0;
  down = false;
  /** Lease reads, to count attempts. */
  gets = 0;

  client(): LeaseClient {
    const wire = (l: V1Lease) => JSON.parse(JSON.stringify(l)) as V1Lease;
    const save = (l: V1Lease) => {
      this.rv++;
      this.lease = { ...wire(l), metadata: { ...l.metadata, resourceVersion: String(this.rv) } };
      this.json = JSON.stringify(l);
      return wire(this.lease);
    };
    return {
      get: async () => {
        this.gets++;
        if (this.down) throw new Error('connect ECONNREFUSED');
        return this.lease && wire(this.lease);
      },
      create: async (l) => {
        if (this.down) throw new Error('connect ECONNREFUSED');
        if (this.lease) throw new LeaseConflict('exists');
        return save(l);
      },
      replace: async (l) => {
        if (this.down) throw new Error('connect ECONNREFUSED');
        if (l.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw new LeaseConflict('stale');
        return save(l);
      },
    };
  }

  /** A Lease someone else holds, as the API server would return it. */
  heldBy(holderIdentity: string, spec: { leaseDurationSeconds: number; renewTime: string; leaseTransitions: number }): void {
    this.lease = {
      metadata: { name: 'controller', namespace: 'ns', resourceVersion: '0' },
      spec: { holderIdentity, ...spec, renewTime: spec.renewTime as unknown as Date },
    };
  }

  get holder(): string | undefined {
    return this.lease?.spec?.holderIdentity;
  }
}

function setup() {
  const clock = new ManualClock(1_000_000);
  const store = new LeaseStore();
  const electors: LeaseElector[] = [];
  const elector = (identity: string) => {
    const e = new LeaseElector(store.client(), { namespace: 'ns', name: 'controller', identity, clock, random: () => 0 }).start();
    electors.push(e);
    return e;
  };
  /** Moves virtual time in small steps, letting the electors' requests complete in between. */
  const run = async (ms: number, step = 100) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await settle();
    }
  };
  return { clock, store, elector, run, stopAll: () => Promise.all(electors.map((e) => e.stop({ release: false }))) };
}

describe('LeaseElector (virtual time, defaults 15 s / 10 s / 2 s)', () => {
  it('creates the Lease and leads; a second elector stays a follower while it is renewed', async () => {
    const { store, elector, run, stopAll } = setup();
    const a = elector('a');
    await settle();
    expect(a.isLeader).toBe(true);
    const b = elector('b');
    const bStates: boolean[] = [];
    b.isLeader$.subscribe((v) => bStates.push(v));
    await run(60_000);
    expect(a.isLeader).toBe(true);
    expect(bStates).toEqual([false]);
    expect(store.holder).toBe('a');
    expect(store.lease?.spec?.leaseTransitions).toBe(0);
    expect(store.lease?.spec?.leaseDurationSeconds).toBe(15);
    await stopAll();
  });

  it('writes acquireTime and renewTime as MicroTime (six fractional digits), keeping acquireTime on renew', async () => {
    const { store, elector, run, stopAll } = setup();
    elector('a');
    await settle();
    const acquired = store.lease?.spec?.acquireTime;
    await run(5_000);
    expect(store.json).toMatch(/"renewTime":"[^"]+\.\d{6}Z"/);
    expect(store.json).toMatch(/"acquireTime":"[^"]+\.\d{6}Z"/);
    expect(store.lease?.spec?.acquireTime).toEqual(acquired);
    expect(store.lease?.spec?.renewTime).not.toEqual(acquired);
    await stopAll();
  });

  it('takes over an abandoned Lease only once the locally observed lease duration has passed', async () => {
    const { store, elector, run, stopAll } = setup();
    const a = elector('a');
    await settle();
    await a.stop({ release: false });
    expect(store.holder).toBe('a');
    const b = elector('b');
    await run(14_900);
    expect(b.isLeader).toBe(false);
    // Its retries fall every 2 s (14 s, 16 s…), but the one after 14 s is timed to the expiry.
    await run(200);
    expect(b.isLeader).toBe(true);
    expect(store.holder).toBe('b');
    expect(store.lease?.spec?.leaseTransitions).toBe(1);
    await stopAll();
  });

  it('times the attempt to the expiry it observed, also for a Lease with another duration', async () => {
    const { store, elector, run, stopAll } = setup();
    store.heldBy('gone', { leaseDurationSeconds: 7, renewTime: '1970-01-01T00:00:00.000000Z', leaseTransitions: 0 });
    const b = elector('b');
    await run(6_900);
    expect(b.isLeader).toBe(false);
    await run(200);
    expect(b.isLeader).toBe(true);
    await stopAll();
  });

  it('keeps to the retry period while the API fails, also past the observed expiry', async () => {
    const { store, elector, run, stopAll } = setup();
    const a = elector('a');
    await settle();
    await a.stop({ release: false });
    const b = elector('b');
    await settle();
    store.down = true;
    const before = store.gets;
    await run(20_000);
    expect(b.isLeader).toBe(false);
    // One attempt per 2 s retry period, plus the one timed to the expiry at 15 s: no busy loop.
    expect(store.gets - before).toBeLessThanOrEqual(11);
    store.down = false;
    await run(2_500);
    expect(b.isLeader).toBe(true);
    await stopAll();
  });

  it('ignores the holder clock: a renewTime far in the past does not shorten the wait', async () => {
    const { store, elector, run, stopAll } = setup();
    store.heldBy('skewed', { leaseDurationSeconds: 15, renewTime: '2001-01-01T00:00:00.000000Z', leaseTransitions: 3 });
    const b = elector('b');
    await run(14_000);
    expect(b.isLeader).toBe(false);
    await run(4_000);
    expect(b.isLeader).toBe(true);
    expect(store.lease?.spec?.leaseTransitions).toBe(4);
    await stopAll();
  });

  it('steps down once it could not renew for the renew deadline', async () => {
    const { store, elector, run, stopAll } = setup();
    const a = elector('a');
    await settle();
    const states: boolean[] = [];
    a.isLeader$.subscribe((v) => states.push(v));
    store.down = true;
    await run(9_000);
    expect(a.isLeader).toBe(true);
    await run(3_000);
    expect(a.isLeader).toBe(false);
    expect(states).toEqual([true, false]);
    store.down = false;
    await run(4_000);
    expect(a.isLeader).toBe(true);
    await stopAll();
  });

  it('steps down at once when it finds someone else holding the Lease', async () => {
    const { store, elector, run, stopAll } = setup();
    const a = elector('a');
    await settle();
    store.lease = { ...store.lease!, spec: { ...store.lease!.spec, holderIdentity: 'intruder' } };
    await run(2_100);
    expect(a.isLeader).toBe(false);
    await stopAll();
  });

  it('releases the Lease on stop so a standby takes over within one retry period', async () => {
    const { store, elector, run, stopAll } = setup();
    const a = elector('a');
    await settle();
    const b = elector('b');
    await run(3_000);
    const aStates: boolean[] = [];
    let completed = false;
    a.isLeader$.subscribe({ next: (v) => aStates.push(v), complete: () => (completed = true) });
    await a.stop();
    expect(store.holder).toBe('');
    expect(aStates).toEqual([true, false]);
    expect(completed).toBe(true);
    await run(2_500);
    expect(b.isLeader).toBe(true);
    expect(store.lease?.spec?.leaseTransitions).toBe(1);
    await stopAll();
  });

  it('rejects timings a Lease cannot honour', () => {
    const client = new LeaseStore().client();
    expect(() => new LeaseElector(client, { namespace: 'n', name: 'l', leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(/renewDeadline/);
    expect(() => new LeaseElector(client, { namespace: 'n', name: 'l', renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/retryPeriod/);
  });
});
