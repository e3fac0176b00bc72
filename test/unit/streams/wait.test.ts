// waitForObject: a wait fed by a watch of one object. It ends on the event that satisfies it (one
// LIST, no polling), treats absence as a state, closes its watch when done, and at the deadline
// says what it last saw and why the watch failed.
import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError } from '../../../streams/kube-transport.js';
import { waitForObject, WaitTimeout } from '../../../streams/wait.js';
import { ScriptedTransport } from './scripted-transport.js';

interface Thing {
  metadata: { name: string; resourceVersion: string };
  ready?: boolean;
}

const thing = (rv: string, ready = false): Thing => ({ metadata: { name: 'x', resourceVersion: rv }, ready });
const settle = () => new Promise<void>((r) => setImmediate(r));

function wait(transport: ScriptedTransport, until: (t: Thing | undefined) => boolean, timeoutMs = 60_000) {
  return waitForObject<Thing>({
    kubeConfig: new KubeConfig(),
    collectionPath: '/apis/g/v1/namespaces/ns/things',
    name: 'x',
    project: (raw) => raw as Thing,
    describe: 'thing ns/x',
    until,
    timeoutMs,
    onTimeout: (last, err) => `x is ${last ? (last.ready ? 'ready' : 'not ready') : 'absent'}${err ? `; ${err}` : ''}`,
    transport,
  });
}

describe('waitForObject', () => {
  it('ends on the watch event that satisfies it, after a single LIST, and closes the watch', async () => {
    const transport = new ScriptedTransport();
    let result: Thing | undefined | 'pending' = 'pending';
    const done = wait(transport, (t) => t?.ready === true).then((t) => (result = t));
    await settle();
    expect(transport.lists).toHaveLength(1);
    expect(transport.lists[0]!.query).toMatchObject({ fieldSelector: 'metadata.name=x' });
    transport.lists[0]!.resolve({ items: [thing('1')], resourceVersion: '1' });
    await settle();
    transport.lastWatch.connect();
    transport.lastWatch.event('MODIFIED', thing('2'));
    await settle();
    expect(result).toBe('pending');
    transport.lastWatch.event('MODIFIED', thing('3', true));
    await done;
    expect(result).toEqual(thing('3', true));
    expect(transport.lists).toHaveLength(1);
    expect(transport.lastWatch.signal.aborted).toBe(true);
  });

  it('treats absence as a state: already absent ends at once, a deletion ends it', async () => {
    const gone = (t: Thing | undefined) => t === undefined;
    const t1 = new ScriptedTransport();
    const w1 = wait(t1, gone);
    await settle();
    t1.lists[0]!.resolve({ items: [], resourceVersion: '1' });
    await expect(w1).resolves.toBeUndefined();

    const t2 = new ScriptedTransport();
    const w2 = wait(t2, gone);
    await settle();
    t2.lists[0]!.resolve({ items: [thing('1')], resourceVersion: '1' });
    await settle();
    t2.lastWatch.connect();
    t2.lastWatch.event('DELETED', thing('2'));
    await expect(w2).resolves.toBeUndefined();
  });

  it('does not decide before the first LIST (an object not yet listed is not absent)', async () => {
    const transport = new ScriptedTransport();
    let settled = false;
    const w = wait(transport, (t) => t === undefined).then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    transport.lists[0]!.resolve({ items: [], resourceVersion: '1' });
    await w;
    expect(settled).toBe(true);
  });

  it('fails at the deadline with the last state and the watch error', async () => {
    const transport = new ScriptedTransport();
    const w = wait(transport, (t) => t?.ready === true, 300);
    await settle();
    transport.lists[0]!.reject(new ApiError('list things: HTTP 403 Forbidden: no', 403, 'Forbidden'));
    await expect(w).rejects.toBeInstanceOf(WaitTimeout);
    await expect(w).rejects.toThrow(/^x is absent; .*HTTP 403/);
  });
});
