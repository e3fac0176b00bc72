// One metric prefix: every metric of the controller and the webhook is either a controller-runtime,
// workqueue or client-go leader-election name (so existing dashboards apply) or the project's own, under `mcsa_`.
import { describe, expect, it } from '@jest/globals';
import { ControllerMetrics } from '../../streams/controller/metrics.js';
import { WebhookMetrics } from '../../streams/webhook/metrics.js';

const ALLOWED = /^(mcsa_|controller_runtime_|workqueue_|leader_election_)/;

describe('metric names', () => {
  it.each([
    ['controller', () => new ControllerMetrics({ defaultMetrics: false }).registry],
    ['webhook', () => new WebhookMetrics({ defaultMetrics: false }).registry],
  ])('%s: controller-runtime names or mcsa_*', async (_name, registry) => {
    const names = (await registry().getMetricsAsJSON()).map((m) => m.name).filter((n) => !/^(process_|nodejs_)/.test(n));
    expect(names.length).toBeGreaterThan(3);
    expect(names.filter((n) => !ALLOWED.test(n))).toEqual([]);
  });

  it('the webhook’s own metrics are mcsa_webhook_*', async () => {
    const names = (await new WebhookMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.filter((n) => n.startsWith('mcsa_')).every((n) => n.startsWith('mcsa_webhook_'))).toBe(true);
    expect(names.some((n) => n.startsWith('mcsa_webhook_'))).toBe(true);
  });
});
