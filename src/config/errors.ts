/**
 * Why a config loader failed.
 *
 * - `InvalidName`: an import name is not a DNS-1123 subdomain (this also rules out `..` and `/`).
 * - `NotMounted`: the named import has no directory under the mount root.
 * - `NoImportMounted` / `SeveralImportsMounted`: a loader that needs exactly one import found
 *   none or several; `count` and `names` say what was found.
 * - `InvalidFile`: a file was read but does not decode (YAML syntax, a kubeconfig field of the
 *   wrong type, a malformed namespace/server/token/CA); `path` and `field` say where.
 * - `ReadFailed`: a file or directory could not be read (permissions, I/O, kept changing).
 * - `ContextNotFound`: a kubeconfig has no such context (or no current context).
 * - `NoConfiguration`: nothing to load from (no import, no kubeconfig, not in a cluster).
 */
export type ConfigErrorCode =
  | 'InvalidName'
  | 'NotMounted'
  | 'NoImportMounted'
  | 'SeveralImportsMounted'
  | 'InvalidFile'
  | 'ReadFailed'
  | 'ContextNotFound'
  | 'NoConfiguration';

/** What a {@link ConfigError} is about; never holds secret material. */
export interface ConfigErrorDetails {
  /** The import or context name concerned. */
  name?: string;
  /** The file or directory concerned. */
  path?: string;
  /** The field inside the file that failed to decode (`users.0.user.tokenFile`). */
  field?: string;
  /** How many imports were found (for `NoImportMounted` / `SeveralImportsMounted`). */
  count?: number;
  /** The names found (imports or contexts), to help pick one. */
  names?: string[];
}

/** The one error type thrown (or emitted) by the config loaders. Messages never contain tokens. */
export class ConfigError extends Error {
  /** Always `ConfigError`. */
  override readonly name = 'ConfigError';

  /**
   * @param code why the loader failed
   * @param message what failed, naming the import, file and field (never file contents)
   * @param details the names, paths and counts the message is about
   * @param options `cause`: the underlying error (a file-system error, a YAML syntax error)
   */
  constructor(
    readonly code: ConfigErrorCode,
    message: string,
    readonly details: ConfigErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `e` is a {@link ConfigError}, optionally with the given code. */
export function isConfigError(e: unknown, code?: ConfigErrorCode): e is ConfigError {
  return e instanceof ConfigError && (code === undefined || e.code === code);
}

/** The errno code of a Node.js system error, if any. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
