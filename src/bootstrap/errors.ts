/**
 * Errors the CLI reports as one line. A UsageError (bad flag value, unknown context, missing
 * file, invalid name) exits with 2; any other CliError (a cluster refused, is unreachable, lacks
 * the CRD) exits with 1.
 */
export class CliError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  override readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit code for an error thrown anywhere in a command: 2 for usage errors, 1 otherwise. */
export function exitCodeOf(e: unknown): number {
  return e instanceof CliError ? e.exitCode : 1;
}
