import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { ManualClock } from './manual-clock.js';
import { ApiError } from '../../../streams/kube-transport.js';
import { ScriptedTransport } from './scripted-transport.js';
import { listWatch, type WatchEvent, type WatchHealth } from '../../../streams/watch.js';
import {
  backoffDelay,
  decideAfterWatch,
  watchIdleDeadlineMs,
  watchQuery,
  type WatchEnd,
} from '../../../streams/watch-policy.js';
import { createLogger } from '../../../src/logger.js';

/** A watch that closes this fast with nothing in it is treated as suspicious (streams/watch-policy.ts). */
const MIN_HEALTHY_WATCH_MS = 1_000;

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('watch policy', () => {
  const attempt = (end: WatchEnd, extra: { events?: number; durationMs?: number } = {}) => ({
    end,
    connected: true,
    events: extra.events ?? 1,
    durationMs: extra.durationMs ?? 60_000,
  });

  it('resumes at once after a server close or an idle timeout', () => {
    expect(decideAfterWatch(attempt({ kind: 'closed' }), 0, 3)).toEqual({ relist: false, backoff: false });
    expect(decideAfterWatch(attempt({ kind: 'idle' }), 0, 3)).toEqual({ relist: false, backoff: false });
  });

  it('backs off (without relisting) after a watch that closed at once with nothing in it', () => {
    const quick = attempt({ kind: 'closed' }, { events: 0, durationMs: MIN_HEALTHY_WATCH_MS - 1 });
    expect(decideAfterWatch(quick, 0, 3)).toEqual({ relist: false, backoff: true });
  });

  it('relists at once on 410, as an ERROR event or as a status', () => {
    expect(decideAfterWatch(attempt({ kind: 'expired', message: 'too old' }), 0, 3)).toEqual({ relist: true, backoff: false });
    expect(decideAfterWatch(attempt({ kind: 'failed', message: 'Gone', statusCode: 410 }), 0, 3)).toEqual({ relist: true, backoff: false });
  });

  it('backs off after failures, and relists once they repeat', () => {
    const failed = attempt({ kind: 'failed', message: 'connect ECONNREFUSED' });
    expect(decideAfterWatch(failed, 0, 3)).toEqual({ relist: false, backoff: true, failure: 'connect ECONNREFUSED' });
    expect(decideAfterWatch(failed, 1, 3)).toMatchObject({ relist: false });
    expect(decideAfterWatch(failed, 2, 3)).toMatchObject({ relist: true, backoff: true });
    const forbidden = attempt({ kind: 'failed', message: 'HTTP 403 Forbidden', statusCode: 403 });
    expect(decideAfterWatch(forbidden, 0, 3)).toMatchObject({ backoff: true, failure: 'HTTP 403 Forbidden' });
  });

  it('grows the backoff exponentially up to its cap, jitter only shortening it', () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, {}, noJitter))).toEqual([500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
    expect(backoffDelay(1_000, { initialMs: 10, maxMs: 100 }, noJitter)).toBe(100);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, { jitter: 0.5 });
      expect(d).toBeGreaterThanOrEqual(1_000);
      expect(d).toBeLessThanOrEqual(2_000);
    }
  });

  it('restarts a silent watch after 70–100 % of the idle timeout, drawn per request, so watches started together drift apart', () => {
    expect(watchIdleDeadlineMs(30_000, () => 0)).toBe(30_000);
    expect(watchIdleDeadlineMs(30_000, () => 0.5)).toBe(25_500);
    expect(watchIdleDeadlineMs(30_000, () => 0.999999)).toBe(21_000);
    expect(watchIdleDeadlineMs(30_000, () => 7)).toBe(21_000); // a random source out of range is clamped
    // 300 watches silent together: their restarts spread over 9 s, not one burst.
    const deadlines = Array.from({ length: 300 }, () => watchIdleDeadlineMs(30_000));
    expect(Math.min(...deadlines)).toBeGreaterThanOrEqual(21_000);
    expect(Math.max(...deadlines)).toBeLessThanOrEqual(30_000);
    expect(new Set(deadlines.map((d) => Math.floor(d / 1_000))).size).toBeGreaterThanOrEqual(8);
  });

  it('asks for bookmarks and a server timeout between 5 and 10 minutes', () => {
    expect(watchQuery('42', {}, () => 0.999999).timeoutSeconds).toBe('600');
    expect(watchQuery('42', { labelSelector: 'a=b' }, () => 0)).toEqual({
      labelSelector: 'a=b',
      resourceVersion: '42',
      allowWatchBookmarks: 'true',
      timeoutSeconds: '300',
    });
  });
});

interface Item {
  name: string;
  rv: string;
}

const raw = (name: string, rv: string, extra: Record<string, unknown> = {}) => ({ metadata: { name, namespace: 'ns', resourceVersion: rv, managedFields: [{}] }, ...extra });

function project(o: unknown): Item | undefined {
  const m = (o as { metadata?: { name?: string; resourceVersion?: string } }).metadata;
  if ((o as { bad?: boolean }).bad) throw new Error('spec.clusterName: expected string, got missing');
  return m?.name && m.resourceVersion ? { name: m.name, rv: m.resourceVersion } : undefined;
}

function start(opts: { idleTimeoutMs?: number; resyncIntervalMs?: number; relistAfterFailures?: number; maxListItems?: number } = {}) {
  const transport = new ScriptedTransport();
  const clock = new ManualClock(0);
  const events: WatchEvent<Item>[] = [];
  const health: WatchHealth[] = [];
  const logs: string[] = [];
  const errors: unknown[] = [];
  const logger = createLogger({ component: 'test', level: 'debug', stream: new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }) });
  const sub = listWatch<Item>({
    kubeConfig: new KubeConfig(),
    path: '/api/v1/namespaces/ns/configmaps',
    describe: 'cluster9 configmaps',
    project,
    transport,
    clock,
    random: () => 0,
    logger,
    backoff: { initialMs: 100, maxMs: 1_000 },
    onHealth: (h) => health.push(h),
    resyncIntervalMs: opts.resyncIntervalMs ?? 0,
    ...opts,
  }).subscribe({ next: (e) => events.push(e), error: (e: unknown) => errors.push(e) });
  return { transport, clock, events, health, logs, errors, sub };
}

describe('listWatch loop (scripted transport, virtual time)', () => {
  it('lists, emits RESET, then watches from the list resourceVersion with bookmarks', async () => {
    const { transport, events, health, sub } = start();
    await settle();
    expect(transport.lists[0]!.query).toEqual({ limit: '100' });
    transport.lists[0]!.resolve({ items: [raw('a', '5')], resourceVersion: '10' });
    await settle();
    expect(events).toEqual([{ type: 'RESET', items: [{ name: 'a', rv: '5' }], resourceVersion: '10' }]);
    expect(health.map((h) => h.connected)).toEqual([true]);
    expect(transport.lastWatch.query).toMatchObject({ resourceVersion: '10', allowWatchBookmarks: 'true', timeoutSeconds: '300' });
    sub.unsubscribe();
  });

  it('follows every page of a paginated list', async () => {
    const { transport, events, sub } = start();
    await settle();
    transport.lists[0]!.resolve({ items: [raw('a', '1')], resourceVersion: '10', continueToken: 'p2' });
    await settle();
    expect(transport.lists[1]!.query).toEqual({ limit: '100', continue: 'p2' });
    transport.lists[1]!.resolve({ items: [raw('b', '2')], resourceVersion: '10' });
    await settle();
    expect(events).toEqual([{ type: 'RESET', items: [{ name: 'a', rv: '1' }, { name: 'b', rv: '2' }], resourceVersion: '10' }]);
    sub.unsubscribe();
  });

  it('gives up a list whose pages never end once they hold more than maxListItems objects, and says so', async () => {
    const { transport, health, events, sub } = start({ maxListItems: 3 });
    await settle();
    transport.lists[0]!.resolve({ items: [raw('a', '1'), raw('b', '1')], resourceVersion: '10', continueToken: 'p2' });
    await settle();
    transport.lists[1]!.resolve({ items: [raw('c', '1'), raw('d', '1')], resourceVersion: '10', continueToken: 'p3' });
    await settle();
    expect(transport.lists).toHaveLength(2);
    expect(events).toEqual([]);
    expect(health.at(-1)).toMatchObject({ connected: false, lastError: 'cluster9 configmaps: list /api/v1/namespaces/ns/configmaps: more than 3 objects across pages; aborted' });
    sub.unsubscribe();
  });

  it('emits projected changes, keeps bookmarks to itself, and resumes from the newest resourceVersion after a close', async () => {
    const { transport, clock, events, sub } = start();
    await settle();
    transport.lists[0]!.resolve({ items: [], resourceVersion: '10' });
    await settle();
    const w = transport.lastWatch;
    w.connect();
    w.event('ADDED', raw('a', '11'));
    w.event('MODIFIED', raw('a', '12'));
    w.event('BOOKMARK', { metadata: { resourceVersion: '20' } });
    clock.advance(60_000);
    w.end({ kind: 'closed' });
    await settle();
    expect(events.slice(1)).toEqual([
      { type: 'ADDED', object: { name: 'a', rv: '11' } },
      { type: 'MODIFIED', object: { name: 'a', rv: '12' } },
    ]);
    expect(transport.lists).toHaveLength(1);
    expect(transport.watches).toHaveLength(2);
    expect(transport.lastWatch.query.resourceVersion).toBe('20');
    sub.unsubscribe();
  });

  it('treats an idle timeout as a normal end: re-watch from the same resourceVersion, no relist', async () => {
    const { transport, sub } = start();
    await settle();
    transport.lists[0]!.resolve({ items: [], resourceVersion: '10' });
    await settle();
    transport.lastWatch.connect();
    transport.lastWatch.end({ kind: 'idle' });
    await settle();
    expect(transport.watches.map((w) => w.query.resourceVersion)).toEqual(['10', '10']);
    expect(transport.lists).toHaveLength(1);
    sub.unsubscribe();
  });

  it('aborts a silent watch after idleTimeoutMs and resumes it', async () => {
    const { transport, clock, sub } = start({ idleTimeoutMs: 1_000 });
    await settle();
    transport.lists[0]!.resolve({ items: [], resourceVersion: '10' });
    await settle();
    transport.lastWatch.connect();
    clock.advance(900);
    transport.lastWatch.event('BOOKMARK', { metadata: { resourceVersion: '11' } });
    clock.advance(900);
    expect(transport.watches[0]!.signal.aborted).toBe(false);
    clock.advance(100);
    await settle();
    expect(transport.watches[0]!.signal.aborted).toBe(true);
    expect(transport.watches.map((w) => w.query.resourceVersion)).toEqual(['10', '11']);
    expect(transport.lists).toHaveLength(1);
    sub.unsubscribe();
  });

  it('relists at once when the watch reports 410 Gone', async () => {
    const { transport, events, sub } = start();
    await settle();
    transport.lists[0]!.resolve({ items: [raw('a', '1')], resourceVersion: '10' });
    await settle();
    transport.lastWatch.connect();
    transport.lastWatch.event('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 10 (50)' });
    await settle();
    expect(transport.watches[0]!.signal.aborted).toBe(true);
    expect(transport.lists).toHaveLength(2);
    transport.lists[1]!.resolve({ items: [], resourceVersion: '60' });
    await settle();
    expect(events.map((e) => e.type)).toEqual(['RESET', 'RESET']);
    expect(transport.lastWatch.query.resourceVersion).toBe('60');
    sub.unsubscribe();
  });

  it('backs off after failures, reports them in health, relists after repeated ones and recovers', async () => {
    const { transport, clock, health, sub } = start({ relistAfterFailures: 3 });
    await settle();
    transport.lists[0]!.resolve({ items: [], resourceVersion: '10' });
    await settle();
    const refused: WatchEnd = { kind: 'failed', message: 'fetch failed: connect ECONNREFUSED 127.0.0.1:6443' };
    transport.lastWatch.end(refused);
    await settle();
    expect(health.at(-1)).toEqual({ connected: false, lastError: 'cluster9 configmaps: fetch failed: connect ECONNREFUSED 127.0.0.1:6443', since: new Date(0) });
    expect(transport.watches).toHaveLength(1);
    clock.advance(99);
    await settle();
    expect(transport.watches).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(transport.watches).toHaveLength(2);
    transport.lastWatch.end(refused);
    await settle();
    clock.advance(200);
    await settle();
    expect(transport.watches).toHaveLength(3);
    transport.lastWatch.end(refused);
    await settle();
    clock.advance(400);
    await settle();
    expect(transport.lists).toHaveLength(2);
    expect(health.filter((h) => !h.connected)).toHaveLength(1);
    transport.lists[1]!.resolve({ items: [], resourceVersion: '70' });
    await settle();
    expect(health.at(-1)).toMatchObject({ connected: true });
    expect(health.at(-1)!.lastError).toBeUndefined();
    sub.unsubscribe();
  });

  it('retries a Forbidden list with backoff instead of failing the stream', async () => {
    const { transport, clock, health, errors, sub } = start();
    await settle();
    transport.lists[0]!.reject(new ApiError('list /api/v1/namespaces/ns/configmaps: HTTP 403 Forbidden: configmaps is forbidden', 403, 'Forbidden'));
    await settle();
    expect(health.at(-1)).toMatchObject({
      connected: false,
      statusCode: 403,
      lastError: 'cluster9 configmaps: list /api/v1/namespaces/ns/configmaps: HTTP 403 Forbidden: configmaps is forbidden',
    });
    clock.advance(100);
    await settle();
    expect(transport.lists).toHaveLength(2);
    expect(errors).toEqual([]);
    sub.unsubscribe();
  });

  it('skips objects that do not decode, naming them in the log', async () => {
    const { transport, events, logs, sub } = start();
    await settle();
    transport.lists[0]!.resolve({ items: [raw('good', '1'), raw('broken', '2', { bad: true }), { metadata: {} }], resourceVersion: '10' });
    await settle();
    expect(events).toEqual([{ type: 'RESET', items: [{ name: 'good', rv: '1' }], resourceVersion: '10' }]);
    const skipped = logs.map((l) => JSON.parse(l) as { message: string; object?: string; error?: string }).filter((l) => l.message.startsWith('skipping'));
    expect(skipped.map((l) => l.object)).toEqual(['ns/broken', '(unnamed object)']);
    expect(skipped[0]!.error).toContain('spec.clusterName');
    sub.unsubscribe();
  });

  it('relists periodically for safety', async () => {
    const { transport, clock, sub } = start({ resyncIntervalMs: 60_000 });
    await settle();
    transport.lists[0]!.resolve({ items: [], resourceVersion: '10' });
    await settle();
    transport.lastWatch.connect();
    clock.advance(54_000);
    await settle();
    expect(transport.watches[0]!.signal.aborted).toBe(true);
    expect(transport.lists).toHaveLength(2);
    sub.unsubscribe();
  });

  it('aborts the open watch and makes no more requests once unsubscribed', async () => {
    const { transport, clock, sub } = start();
    await settle();
    transport.lists[0]!.resolve({ items: [], resourceVersion: '10' });
    await settle();
    sub.unsubscribe();
    await settle();
    expect(transport.watches[0]!.signal.aborted).toBe(true);
    clock.advance(3_600_000);
    await settle();
    expect(transport.watches).toHaveLength(1);
    expect(transport.lists).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });
});
