// Stress: 1,000 kubelet `..data` swaps of one import while three readers run: a raw snapshot
// reader, a promise loader in a loop, and the observable loader. None may ever see files of two
// generations at once, go back in time, or emit the same generation twice, and the observable ends
// on the last generation. Slow by nature (tens of seconds on a loaded 2-core machine);
// MCSA_CONFIG_STRESS_SWAPS lowers the count for local runs. How soon the last generation is
// emitted is printed, not asserted: timings belong to the benchmarks.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { MOUNT_ROOT_ENV, namedServiceAccountImportConfigAndNamespace$ } from '../../../src/config/index.js';
import { loaderEnvironment } from '../../../src/config/environment.js';
import { loadImport } from '../../../src/config/loaders.js';
import { readVolumeSnapshot } from '../../../src/config/volume.js';
import { assertConsistent, gen, generationInFile, mountImport, record, tempDir, timed } from './fixtures.js';

let root: string;
let removeRoot: () => Promise<void>;
let stop: (() => void) | undefined;
const saved = { ...process.env };
const NO_POLL = { pollIntervalMs: 60_000 };
/** Well under the poll interval: what arrives within it came from the watch, not from a poll. */
const DEADLINE_MS = 20_000;
/** Readers yield a moment between reads, so they interleave with the writer instead of starving it. */
const breathe = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

beforeEach(async () => {
  ({ dir: root, remove: removeRoot } = await tempDir('stress'));
  process.env[MOUNT_ROOT_ENV] = root;
});

afterEach(async () => {
  stop?.();
  process.env = { ...saved };
  await removeRoot();
});

describe('stress: 1,000 swaps while readers loop', () => {
  it('never yields a mixed generation and ends on the last one', async () => {
    const SWAPS = Number(process.env.MCSA_CONFIG_STRESS_SWAPS ?? 1000);
    const dir = path.join(root, 'c');
    await mountImport(root, 'c', 0);
    const observed = record(namedServiceAccountImportConfigAndNamespace$('c', NO_POLL));
    stop = observed.stop;
    await observed.waitFor(() => true);

    let done = false;
    const stats = { snapshots: 0, loads: 0, mixed: [] as string[] };
    const snapshotReader = (async () => {
      let last = 0;
      while (!done) {
        const s = await readVolumeSnapshot(dir);
        const gens = new Set([...s!.files].map(([k, v]) => generationInFile(k, v.toString())));
        if (s!.files.size !== 5 || gens.size !== 1) stats.mixed.push(`${s!.files.size} files, generations ${[...gens].join('/')}`);
        const g = [...gens][0]!;
        if (g < last) stats.mixed.push(`went back ${last}→${g}`);
        last = g;
        stats.snapshots++;
        await breathe();
      }
    })();
    const loaderReader = (async () => {
      const env = loaderEnvironment();
      while (!done) {
        const c = (await loadImport(env, 'c')).value;
        await assertConsistent(c, 'c');
        stats.loads++;
        await breathe();
      }
    })();

    const t0 = performance.now();
    for (let g = 1; g <= SWAPS; g++) await mountImport(root, 'c', g);
    const writeMs = performance.now() - t0;
    const { ms: lastEmissionMs } = await timed(observed.waitFor((v) => gen(v) === SWAPS, DEADLINE_MS, `generation ${SWAPS}`));
    done = true;
    await Promise.all([snapshotReader, loaderReader]);

    const gens: number[] = [];
    for (const v of observed.values) gens.push(await assertConsistent(v, 'c'));
    expect(stats.mixed).toEqual([]);
    expect([...gens].sort((a, b) => a - b)).toEqual(gens); // never back in time
    expect(new Set(gens).size).toBe(gens.length); // no duplicate emission
    expect(gens.at(-1)).toBe(SWAPS);
    expect(stats.snapshots).toBeGreaterThan(50);
    expect(stats.loads).toBeGreaterThan(20);
    process.stderr.write(
      `stress: ${SWAPS} swaps in ${Math.round(writeMs)} ms; ${stats.snapshots} snapshot reads, ${stats.loads} full loads, ` +
        `${observed.values.length} emissions, last emission ${Math.round(lastEmissionMs)} ms after the last swap; 0 mixed\n`,
    );
  }, 180_000);
});
