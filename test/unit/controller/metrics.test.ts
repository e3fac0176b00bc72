import { describe, expect, it } from '@jest/globals';
import { ControllerMetrics } from '../../../streams/controller/metrics.js';
import { SecretAnnotations } from '../../../src/secret.js';

describe('ControllerMetrics.render', () => {
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  for (const name of ['a', 'b', 'c']) metrics.tokenSecondsToExpiry.set({ namespace: 'team-a', import: name }, 100);
  metrics.clusterUp.set({ cluster: 'cluster2' }, 1);
  metrics.watchConnections.set(4);

  it('renders every metric without names', async () => {
    const all = await metrics.render();
    expect(all).toBe(await metrics.registry.metrics());
    expect(all).toContain('mcsa_token_seconds_to_expiry{namespace="team-a",import="c"} 100');
  });

  it('renders only the named metrics, in the exposition format of the whole registry', async () => {
    const one = await metrics.render(['mcsa_remote_cluster_up']);
    expect(one).toBe('# HELP mcsa_remote_cluster_up 1 when the controller can call a source cluster (its watches connected, its calls not held back after failures), else 0.\n# TYPE mcsa_remote_cluster_up gauge\nmcsa_remote_cluster_up{cluster="cluster2"} 1\n');
    const two = await metrics.render(['mcsa_watch_connections', 'mcsa_remote_cluster_up', 'mcsa_watch_connections']);
    expect(two.split('\n').filter((l) => !l.startsWith('#') && l !== '')).toEqual(['mcsa_watch_connections 4', 'mcsa_remote_cluster_up{cluster="cluster2"} 1']);
    expect(two).not.toContain('mcsa_token_seconds_to_expiry');
  });

  it('renders nothing for unknown names', async () => {
    expect(await metrics.render(['no_such_metric'])).toBe('');
  });
});

describe('ControllerMetrics.setTokenExpiries', () => {
  it('sets seconds to expiry from the cached Secrets at scrape time, Ready or not, and drops Secrets that are gone', async () => {
    const metrics = new ControllerMetrics({ defaultMetrics: false });
    const now = new Date('2026-01-01T00:00:00Z');
    const secret = (namespace: string, importName: string, expiration?: string, issued?: string) => ({
      namespace,
      importName,
      annotations: { ...(expiration ? { [SecretAnnotations.expiration]: expiration } : {}), ...(issued ? { [SecretAnnotations.issued]: issued } : {}) } as Record<string, string>,
    });
    metrics.setTokenExpiries([
      secret('multicluster-service-account', 'cluster2', '2026-01-01T04:00:00Z', '2025-12-31T04:00:00Z'),
      secret('team-a', 'a', '2025-12-31T23:00:00Z', '2025-12-31T22:00:00Z'),
      secret('team-a', 'no-issue-time', '2026-01-01T00:10:00Z'),
      secret('team-a', 'no-times'),
      secret('team-a', '', '2026-01-01T01:00:00Z', '2026-01-01T00:00:00Z'),
    ], now);
    const text = await metrics.render(['mcsa_token_seconds_to_expiry', 'mcsa_token_lifetime_seconds']);
    expect(text).toContain('mcsa_token_seconds_to_expiry{namespace="multicluster-service-account",import="cluster2"} 14400');
    expect(text).toContain('mcsa_token_seconds_to_expiry{namespace="team-a",import="a"} -3600');
    expect(text).toContain('mcsa_token_seconds_to_expiry{namespace="team-a",import="no-issue-time"} 600');
    expect(text).toContain('mcsa_token_lifetime_seconds{namespace="multicluster-service-account",import="cluster2"} 86400');
    expect(text).toContain('mcsa_token_lifetime_seconds{namespace="team-a",import="a"} 3600');
    expect(text).not.toContain('mcsa_token_lifetime_seconds{namespace="team-a",import="no-issue-time"}');
    expect(text).not.toContain('no-times');
    metrics.setTokenExpiries([], now);
    expect(await metrics.render(['mcsa_token_seconds_to_expiry', 'mcsa_token_lifetime_seconds'])).not.toContain('import=');
  });
});
