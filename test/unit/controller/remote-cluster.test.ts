// A source cluster's call breaker (streams/controller/remote-cluster.ts): a sick source is
// unreachable for its imports for a growing, jittered while after a failed call, so they fail at
// once instead of each waiting out its deadline; a success ends it. And its start, now or delayed
// (the registry spaces clusters registered together); the one watch started is stopped at once.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/logger.js';
import { RemoteCluster, type RemoteEvent } from '../../../streams/controller/remote-cluster.js';

function setup() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', component: 'test', stream: new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) }) });
  const cluster = new RemoteCluster({ name: 'sick', server: 'https://127.0.0.1:1', caPem: 'ca', auth: { kind: 'token', token: 'registration-token' }, source: 'registration' }, { logger });
  const events: RemoteEvent[] = [];
  cluster.events$.subscribe((e) => events.push(e));
  return { cluster, events, lines };
}

beforeEach(() => {
  jest.useFakeTimers({ now: new Date('2026-12-04T12:00:00Z') });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('RemoteCluster call breaker', () => {
  it('holds calls back after a sick failure, says why, and lets them try again after a jittered delay', () => {
    const { cluster, events } = setup();
    expect(cluster.reachable).toBe(true);
    cluster.noteCallFailure('TokenRequest failed: no answer within 15 s', undefined);
    expect(cluster.reachable).toBe(false);
    expect(cluster.lastError).toBe('TokenRequest failed: no answer within 15 s');
    expect(events).toEqual([{ kind: 'health', reachable: false }]);
    // 1 s minus up to 30 % jitter: held at 690 ms, free at 1 s, when its imports are told to look again.
    jest.advanceTimersByTime(690);
    expect(cluster.reachable).toBe(false);
    jest.advanceTimersByTime(310);
    expect(cluster.reachable).toBe(true);
    expect(events).toEqual([{ kind: 'health', reachable: false }, { kind: 'health', reachable: true }]);
    cluster.stop();
  });

  it('doubles the delay on each failure in a row, up to a minute, and forgets it after a success', () => {
    const { cluster } = setup();
    const heldFor = () => {
      let ms = 0;
      while (!cluster.reachable) {
        jest.advanceTimersByTime(10);
        ms += 10;
      }
      return ms;
    };
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      cluster.noteCallFailure('TokenRequest failed: HTTP 503', 503);
      delays.push(heldFor());
    }
    delays.forEach((d, i) => {
      const base = Math.min(60_000, 1_000 * 2 ** i);
      expect(d).toBeGreaterThanOrEqual(base * 0.7 - 10);
      expect(d).toBeLessThanOrEqual(base + 10);
    });
    expect(cluster.lastStatusCode).toBeUndefined();
    cluster.noteCallSuccess();
    cluster.noteCallFailure('TokenRequest failed: HTTP 503', 503);
    expect(cluster.lastStatusCode).toBe(503);
    expect(heldFor()).toBeLessThanOrEqual(1_010);
    cluster.stop();
  });

  it('never logs the registration token', () => {
    const { cluster, lines } = setup();
    cluster.noteCallFailure('TokenRequest failed: HTTP 500', 500);
    cluster.noteCallSuccess();
    expect(lines.join('')).toContain('calls to the cluster are failing');
    expect(lines.join('')).not.toContain('registration-token');
    cluster.stop();
  });
});

describe('RemoteCluster start', () => {
  it('opens its watch only when a delayed start is due, and never when stopped before', () => {
    const { cluster } = setup();
    cluster.start(50);
    expect(cluster.watchCount).toBe(0);
    expect(cluster.synced).toBe(false);
    jest.advanceTimersByTime(49);
    expect(cluster.watchCount).toBe(0);
    jest.advanceTimersByTime(1);
    expect(cluster.watchCount).toBe(1);
    cluster.stop();
    expect(cluster.watchCount).toBe(0);

    const early = setup().cluster;
    early.start(50);
    early.stop();
    jest.advanceTimersByTime(100);
    expect(early.watchCount).toBe(0);
  });
});
