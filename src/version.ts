// The package's version, read from its package.json wherever the code runs from: the checkout
// (src/version.ts), the compiled library (dist/src/version.js), a bundle in the npm package
// (dist/streams/…/main.js, dist/cli/kubemcsa.js) or in the image (/app/streams/…/main.js beside
// /app/package.json). Only a package.json of this package counts (never a user's project's).
import { readFileSync } from 'node:fs';

const PACKAGE_NAME = 'multicluster-service-account';

// Set by scripts/executables.mjs (esbuild `define`) in the single-file executables, which have
// no package.json beside them; undeclared (typeof: "undefined") everywhere else.
declare const __MCSA_VERSION__: string | undefined;
declare const __MCSA_COMMIT__: string | undefined;

/**
 * The Kubernetes versions the test suites run on, oldest first: the oldest and the newest
 * supported minor (docs/operations/install.md#compatibility). The default of every suite and of
 * the nodes is test/control-plane/go.mod's; the e2e journeys also run on the newest mixed with the
 * oldest (test/control-plane/k8s-<minor>/go.mod). A unit test keeps this list in step with them.
 */
export const TESTED_KUBERNETES_VERSIONS = ['v1.35.4', 'v1.37.2'] as const;

/** The commit the executable was built from, when it was built by scripts/executables.mjs. */
export function buildCommit(): string | undefined {
  return typeof __MCSA_COMMIT__ === 'string' ? __MCSA_COMMIT__ : undefined;
}

/** The version of this package, or `unknown` when no package.json of it is found. */
export function packageVersion(from: string = import.meta.url): string {
  if (typeof __MCSA_VERSION__ === 'string') return __MCSA_VERSION__;
  for (const rel of ['../package.json', '../../package.json', '../../../package.json']) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(new URL(rel, from), 'utf8'));
      if (typeof pkg !== 'object' || pkg === null) continue;
      const { name, version } = pkg as Record<string, unknown>;
      if (name === PACKAGE_NAME && typeof version === 'string') return version;
    } catch {
      // not there: try the next location
    }
  }
  return 'unknown';
}
