// The clusters of a run are the Kubernetes versions it asked for: the default version
// (test/control-plane/go.mod) everywhere, or MCSA_TEST_K8S_VERSIONS cluster by cluster (the
// `compat` project: the newest supported target with the oldest source, and the reverse).
import { describe, expect, it } from '@jest/globals';
import { VersionApi } from '@kubernetes/client-node';
import { defaultMinor, minorOf, supportedKubernetesVersions } from '../harness/binaries.js';
import { adminKubeConfig, testClusters } from '../harness/env.js';

describe('Kubernetes versions of the test clusters', () => {
  it('each cluster runs the supported version asked for it', async () => {
    const asked = process.env.MCSA_TEST_K8S_VERSIONS?.split(',').map((v) => v.trim()) ?? [];
    const supported = supportedKubernetesVersions();
    const running: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const [i, c] of testClusters().clusters.entries()) {
      running[c.name] = (await adminKubeConfig(c.name).makeApiClient(VersionApi).getCode()).gitVersion;
      const minor = asked[i] || defaultMinor();
      expected[c.name] = supported.find((v) => minorOf(v) === minor) ?? `an unsupported minor ${minor}`;
    }
    expect(running).toEqual(expected);
  });
});
