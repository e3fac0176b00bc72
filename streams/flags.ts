// Commander argument parsers shared by the controller and the webhook binaries, over the one
// grammar of each value (src/duration.ts for durations).
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../src/duration.js';

/** A duration flag (`--lease-duration 15s`, `--cert-validity 90d`, or plain seconds) → milliseconds. */
export const durationArg =
  (flag: string) =>
  (v: string): number => {
    try {
      return parseDuration(v, flag);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
