import { catchError, defer, EMPTY, from, map, mergeMap, of, reduce, Subject, timeout, TimeoutError, type Observable } from 'rxjs';
import { deny, type AdmissionResponse } from '../../src/webhook/admission.js';
import { BadReview, completeAdmission, decodeReview, MAX_IMPORTS_PER_POD, planAdmission, type AdmissionPlan } from '../../src/webhook/review.js';
import type { ImportFound } from '../../src/webhook/mutate.js';
import type { Logger } from '../../src/logger.js';
import type { ImportLookup } from './lookup.js';
import { describeError } from '../../src/describe-error.js';

/** What the HTTP layer does with one request body. */
export type AdmissionOutcome =
  | { kind: 'bad-request'; message: string }
  | { kind: 'internal-error'; message: string }
  | { kind: 'response'; response: AdmissionResponse; mutated: boolean; namespace?: string };

interface PipelineOptions {
  lookup: ImportLookup;
  log: Logger;
  /** Admissions worked on at once; the rest wait in order. */
  concurrency?: number;
  /** Imports one pod may name (more → denied without any lookup). */
  maxImportsPerPod?: number;
  /**
   * API lookups one admission runs at once: a pod naming many missing imports takes this many of
   * the lookup's shared slots at most, never all of them.
   */
  lookupsPerRequest?: number;
  /** From arrival to answer, waiting included; past it the pod is denied (the API server would give up anyway). */
  timeoutMs?: number;
  now?: () => number;
}

type LookupPlan = Extract<AdmissionPlan, { kind: 'lookup' }>;

export const DEFAULT_LOOKUPS_PER_REQUEST = 4;

interface Job {
  plan: LookupPlan;
  arrived: number;
  resolve: (o: AdmissionOutcome) => void;
}

/**
 * The admission request pipeline. Each body is decoded and planned at once; when that settles it,
 * or the shared import cache answers every lookup (the usual case), the outcome is given without
 * queueing. Bodies that need the API go into a Subject and are worked on with bounded
 * concurrency (import lookups → mutation) under a deadline, and each caller gets its outcome back.
 * Nothing thrown inside reaches the root subscription: a failure becomes a 400 (the caller's
 * mistake) or a denial (ours).
 */
export class AdmissionPipeline {
  private readonly jobs = new Subject<Job>();
  private readonly done: Promise<void>;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: PipelineOptions) {
    this.timeoutMs = opts.timeoutMs ?? 8000;
    this.now = opts.now ?? Date.now;
    const results = this.jobs.pipe(
      mergeMap((job) => this.work(job).pipe(map((outcome) => ({ job, outcome }))), opts.concurrency ?? 64),
    );
    this.done = new Promise<void>((resolve) => {
      results.subscribe({
        next: ({ job, outcome }) => job.resolve(outcome),
        complete: resolve,
        // work() never errors; this is a last line of defence.
        error: (e: unknown) => {
          opts.log.error('admission pipeline failed', { error: e });
          resolve();
        },
      });
    });
  }

  /**
   * Admits one parsed request body. Never rejects. When no API lookup is needed (the review
   * answers itself, is malformed, or names only imports the cache holds) the outcome is decided at
   * once and never waits behind lookups; otherwise the job is queued behind the concurrency limit.
   */
  admit(body: unknown): Promise<AdmissionOutcome> {
    if (this.closed) return Promise.resolve(this.shuttingDown(body));
    const first = this.decideNow(body);
    if (first.kind !== 'lookup') return Promise.resolve(first);
    const arrived = this.now();
    return new Promise((resolve) => this.jobs.next({ plan: first, arrived, resolve }));
  }

  /** Stops taking jobs and resolves once every accepted job has been answered. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.jobs.complete();
    }
    return this.done;
  }

  private shuttingDown(body: unknown): AdmissionOutcome {
    try {
      const review = decodeReview(body);
      return { kind: 'response', response: deny(review.request.uid, 'the webhook is shutting down, retry', 503), mutated: false };
    } catch (e) {
      return { kind: 'bad-request', message: (e as Error).message };
    }
  }

  /** Decode and plan; the outcome when that settles it (or the cache answers every lookup). */
  private decideNow(body: unknown): AdmissionOutcome | LookupPlan {
    try {
      const plan = planAdmission(decodeReview(body), { maxImports: this.opts.maxImportsPerPod ?? MAX_IMPORTS_PER_POD });
      if (plan.kind === 'answer') return { kind: 'response', response: plan.response, mutated: false };
      const known = this.knownAll(plan);
      if (known) return { kind: 'response', ...completeAdmission(plan, known.found, known.unchecked), namespace: plan.namespace };
      return plan;
    } catch (e) {
      if (e instanceof BadReview) return { kind: 'bad-request', message: e.message };
      return this.unexpected(e);
    }
  }

  /** Our failure, not the caller's: logged, and answered as an internal error. */
  private unexpected(e: unknown): AdmissionOutcome {
    this.opts.log.error('admission failed unexpectedly', { error: e });
    return { kind: 'internal-error', message: 'internal error while processing the AdmissionReview' };
  }

  private work(job: Job): Observable<AdmissionOutcome> {
    const { plan } = job;
    return defer(() => {
      const remaining = Math.max(1, this.timeoutMs - (this.now() - job.arrived));
      return this.lookupAll(plan).pipe(
        map(({ found, unchecked }): AdmissionOutcome => ({ kind: 'response', ...completeAdmission(plan, found, unchecked), namespace: plan.namespace })),
        timeout({ first: remaining }),
        catchError((e: unknown) => of(this.lookupFailure(plan, e))),
      );
    }).pipe(catchError((e: unknown) => of(this.unexpected(e))));
  }

  /**
   * The answer from memory: every import known, or one known missing (the pod is denied whatever
   * the rest are; `unchecked` counts those not looked at). Undefined when the API must be asked.
   */
  private knownAll(plan: LookupPlan): { found: ImportFound[]; unchecked: number } | undefined {
    const known = this.opts.lookup.known;
    if (!known) return undefined;
    const found: ImportFound[] = [];
    let missing = false;
    for (const name of plan.names) {
      const k = known.call(this.opts.lookup, plan.namespace, name);
      if (!k) continue;
      found.push({ name, import: k.value });
      if (!k.value) missing = true;
    }
    const unchecked = plan.names.length - found.length;
    return unchecked === 0 || missing ? { found, unchecked } : undefined;
  }

  /**
   * The names looked up, `lookupsPerRequest` at a time, in the annotation's order. No lookup
   * starts once one import is found missing: the pod is denied anyway, so a pod naming many
   * made-up imports costs the API server a few GETs, not one per name. `unchecked`: the names
   * never looked up (only after a missing one).
   */
  private lookupAll(plan: LookupPlan): Observable<{ found: ImportFound[]; unchecked: number }> {
    const perRequest = this.opts.lookupsPerRequest ?? DEFAULT_LOOKUPS_PER_REQUEST;
    let missing = false;
    return from(plan.names).pipe(
      // Deferred: decided when a slot frees, after the lookups before it have answered.
      mergeMap(
        (name) =>
          defer(() => (missing ? EMPTY : this.opts.lookup.get(plan.namespace, name))).pipe(
            map((sai): ImportFound => {
              if (!sai) missing = true;
              return { name, import: sai };
            }),
          ),
        perRequest,
      ),
      reduce((acc, f) => acc.set(f.name, f), new Map<string, ImportFound>()),
      map((byName) => {
        const found = plan.names.flatMap((name) => byName.get(name) ?? []);
        return { found, unchecked: plan.names.length - found.length };
      }),
    );
  }

  private lookupFailure(plan: LookupPlan, e: unknown): AdmissionOutcome {
    const names = plan.names.map((n) => `"${n}"`).join(', ');
    if (e instanceof TimeoutError) {
      this.opts.log.warn('import lookup timed out', { namespace: plan.namespace, imports: plan.names });
      const message = `timed out after ${this.timeoutMs} ms looking up service account imports ${names} in namespace "${plan.namespace}"`;
      return { kind: 'response', response: deny(plan.uid, message, 504), mutated: false, namespace: plan.namespace };
    }
    this.opts.log.warn('import lookup failed', { namespace: plan.namespace, imports: plan.names, error: describeError(e) });
    const message = `cannot look up service account imports ${names} in namespace "${plan.namespace}": ${describeError(e)}`;
    return { kind: 'response', response: deny(plan.uid, message, 503), mutated: false, namespace: plan.namespace };
  }
}
