// Fixture for the interruption test: reports where its clusters live, then blocks until the
// parent interrupts the Jest run (bounded, so it can never hang forever).
import { it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { waitFor } from '../https.js';

it('blocks until interrupted', async () => {
  writeFileSync(process.env.MCSA_INTERRUPT_MARKER!, process.env.MCSA_TEST_CLUSTERS!);
  await waitFor('an interrupt', () => false, 120_000, 500);
}, 130_000);
