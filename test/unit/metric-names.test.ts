// One metric prefix: every metric of the controller and the webhook is either a controller-runtime,
// workqueue or client-go leader-election name (so existing dashboards apply) or the project's own, under `mcsa_`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { ControllerMetrics } from '../../streams/controller/metrics.js';
import { WebhookMetrics } from '../../streams/webhook/metrics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
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

  it('the webhook’s own metrics are mcsa_webhook_* (but the shared mcsa_build_info)', async () => {
    const names = (await new WebhookMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.filter((n) => n.startsWith('mcsa_') && n !== 'mcsa_build_info').every((n) => n.startsWith('mcsa_webhook_'))).toBe(true);
    expect(names.some((n) => n.startsWith('mcsa_webhook_'))).toBe(true);
  });
});

describe('docs/reference/metrics.md', () => {
  /** The metric names of the table rows of one `## <section>` of the reference. */
  const documented = (section: string) => {
    const text = readFileSync(path.join(ROOT, 'docs', 'reference', 'metrics.md'), 'utf8');
    const body = text.split(/^## /m).find((s) => s.startsWith(`${section}\n`)) ?? '';
    return [...body.matchAll(/^\| `([a-z_:]+)` \| (?:counter|gauge|histogram|summary) \|/gm)].map((m) => m[1]!).sort();
  };
  it.each([
    ['Controller', () => new ControllerMetrics({ defaultMetrics: false }).registry],
    ['Webhook', () => new WebhookMetrics({ defaultMetrics: false }).registry],
  ])('documents exactly the metrics of the %s, with their types', async (section, registry) => {
    const metrics = await registry().getMetricsAsJSON();
    expect(documented(section)).toEqual(metrics.map((m) => m.name).sort());
    const text = readFileSync(path.join(ROOT, 'docs', 'reference', 'metrics.md'), 'utf8');
    for (const m of metrics) expect(text).toContain(`| \`${m.name}\` | ${m.type} |`);
  });
});
