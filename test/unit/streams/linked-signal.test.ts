// linkedSignal (streams/linked-signal.ts): a request's signal under long-lived ones, released when
// the request ends, so a loop retrying every few seconds leaves no listener or timer behind.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { linkedSignal } from '../../../streams/linked-signal.js';

describe('linkedSignal', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('aborts with a parent, with its reason', () => {
    const parent = new AbortController();
    const l = linkedSignal([parent.signal, undefined], 10_000);
    parent.abort(new Error('shutdown'));
    expect(l.signal.aborted).toBe(true);
    expect((l.signal.reason as Error).message).toBe('shutdown');
    expect(l.timedOut()).toBe(false);
    l.release();
  });

  it('times out, saying so, unless released first', () => {
    const l = linkedSignal([], 300);
    jest.advanceTimersByTime(299);
    expect(l.signal.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    expect(l.signal.aborted).toBe(true);
    expect(l.timedOut()).toBe(true);
    const released = linkedSignal([], 300);
    released.release();
    jest.advanceTimersByTime(1_000);
    expect(released.signal.aborted).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('is aborted at once under an aborted parent', () => {
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    const l = linkedSignal([parent.signal], 1_000);
    expect(l.signal.aborted).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
    l.release();
  });

  it('leaves no listener on a long-lived parent after a thousand released requests', () => {
    const parent = new AbortController();
    for (let i = 0; i < 1_000; i++) linkedSignal([parent.signal], 60_000).release();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    expect(jest.getTimerCount()).toBe(0);
  });
});
