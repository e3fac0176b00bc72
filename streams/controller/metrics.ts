import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SecretAnnotations } from '../../src/secret.js';
import type { WorkQueueMetrics } from '../workqueue.js';

const CONTROLLER = 'serviceaccountimport';

/**
 * The controller's Prometheus metrics. Names follow controller-runtime so existing dashboards
 * work; `mcsa_*` metrics are this project's own.
 */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller and result.', labelNames: ['controller', 'result'], registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller.', labelNames: ['controller'], registers: [this.registry] });
  readonly reconcileTime = new Histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller.', labelNames: ['controller'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly activeWorkers = new Gauge({ name: 'controller_runtime_active_workers', help: 'Number of currently used workers per controller.', labelNames: ['controller'], registers: [this.registry] });
  readonly depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue.', labelNames: ['name'], registers: [this.registry] });
  readonly adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue.', labelNames: ['name'], registers: [this.registry] });
  readonly retries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue.', labelNames: ['name'], registers: [this.registry] });
  readonly queueDuration = new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested.', labelNames: ['name'], buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60], registers: [this.registry] });
  readonly workDuration = new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes.', labelNames: ['name'], buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10], registers: [this.registry] });
  readonly tokensMinted = new Counter({ name: 'mcsa_token_refreshes_total', help: 'Tokens minted with the TokenRequest API, by source cluster and why.', labelNames: ['cluster', 'why'], registers: [this.registry] });
  readonly tokenRequests = new Counter({ name: 'mcsa_token_requests_total', help: 'TokenRequest calls sent to source clusters, by cluster and result (ok or the HTTP status / error).', labelNames: ['cluster', 'result'], registers: [this.registry] });
  readonly tokenSecondsToExpiry = new Gauge({ name: 'mcsa_token_seconds_to_expiry', help: 'Seconds until the token in an import\'s Secret expires (computed when scraped).', labelNames: ['namespace', 'import'], registers: [this.registry] });
  readonly tokenLifetime = new Gauge({ name: 'mcsa_token_lifetime_seconds', help: 'Lifetime of the token in an import\'s Secret: its expiry minus the time it was received (computed when scraped).', labelNames: ['namespace', 'import'], registers: [this.registry] });
  readonly clusterUp = new Gauge({ name: 'mcsa_remote_cluster_up', help: '1 when the controller can call a source cluster (its watches connected, its calls not held back after failures), else 0.', labelNames: ['cluster'], registers: [this.registry] });
  readonly watchConnections = new Gauge({ name: 'mcsa_watch_connections', help: 'Open watch connections, local and remote.', registers: [this.registry] });
  readonly importsByReason = new Gauge({ name: 'mcsa_imports', help: 'Imports by Ready status and reason.', labelNames: ['ready', 'reason'], registers: [this.registry] });
  readonly buildInfo = new Gauge({ name: 'mcsa_build_info', help: 'Always 1; the labels say which component and version of multicluster-service-account runs.', labelNames: ['component', 'version'], registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'leader_election_master_status', help: 'Gauge of whether this process is the leader (1) or not (0).', labelNames: ['name'], registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The exposition text: every metric, or only those named (`/metrics?name[]=a&name[]=b`, as
   * client_golang's promhttp filters), so a frequent check of one gauge does not render the
   * per-import series.
   */
  async render(names: readonly string[] = []): Promise<string> {
    if (names.length === 0) return this.registry.metrics();
    const parts: string[] = [];
    for (const name of new Set(names)) if (this.registry.getSingleMetric(name)) parts.push(await this.registry.getSingleMetricAsString(name));
    return parts.length > 0 ? `${parts.join('\n\n')}\n` : ''; // as Registry.metrics() joins them
  }

  /** Sets `mcsa_imports` from the cached imports (at scrape time). */
  countImports(imports: readonly { sai: { status?: { conditions?: { type: string; status: string; reason?: string }[] } } }[]): void {
    const counts = new Map<string, { ready: string; reason: string; n: number }>();
    for (const i of imports) {
      const c = i.sai.status?.conditions?.find((x) => x.type === 'Ready');
      const ready = c?.status ?? 'Unknown';
      const reason = c?.reason ?? 'Pending';
      const k = `${ready}/${reason}`;
      const e = counts.get(k) ?? { ready, reason, n: 0 };
      e.n++;
      counts.set(k, e);
    }
    this.importsByReason.reset();
    for (const { ready, reason, n } of counts.values()) this.importsByReason.set({ ready, reason }, n);
  }

  /**
   * Sets `mcsa_token_seconds_to_expiry` and `mcsa_token_lifetime_seconds` from the cached
   * generated Secrets (at scrape time), so they are current for every import with a token, Ready
   * or not (a registration whose controller cannot refresh it keeps counting down). Their ratio is
   * the share of its lifetime a token has left, whatever lifetime each import asks for.
   */
  setTokenExpiries(secrets: readonly { namespace: string; importName: string; annotations: Record<string, string> }[], now: Date): void {
    this.tokenSecondsToExpiry.reset();
    this.tokenLifetime.reset();
    for (const s of secrets) {
      const exp = Date.parse(s.annotations[SecretAnnotations.expiration] ?? '');
      if (s.importName === '' || Number.isNaN(exp)) continue;
      const labels = { namespace: s.namespace, import: s.importName };
      this.tokenSecondsToExpiry.set(labels, (exp - now.getTime()) / 1000);
      const issued = Date.parse(s.annotations[SecretAnnotations.issued] ?? '');
      if (!Number.isNaN(issued)) this.tokenLifetime.set(labels, (exp - issued) / 1000);
    }
  }

  /** Hooks for the work queue. */
  queueHooks(): WorkQueueMetrics {
    const q = { name: CONTROLLER };
    const c = { controller: CONTROLLER };
    return {
      onAdd: () => this.adds.inc(q),
      onDepth: (d) => this.depth.set(q, d),
      onRetry: () => this.retries.inc(q),
      onQueueLatency: (s) => this.queueDuration.observe(q, s),
      onWorkDuration: (s) => {
        this.workDuration.observe(q, s);
        this.reconcileTime.observe(c, s);
      },
      onActiveWorkers: (n) => this.activeWorkers.set(c, n),
      onOutcome: (o) => {
        const result = o.result === 'success' ? 'success' : o.result === 'requeue' ? 'requeue_after' : 'error';
        this.reconcileTotal.inc({ ...c, result });
        if (result === 'error') this.reconcileErrors.inc(c);
      },
    };
  }
}
