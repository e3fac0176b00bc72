import type { Condition, ConditionStatus } from '../api/import.js';

/**
 * Sets `next` in `conditions` (by type), keeping `lastTransitionTime` when the status did not
 * change, as apimachinery's `meta.SetStatusCondition` does. Returns a new array.
 */
export function setCondition(conditions: readonly Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? list[i] : undefined;
  const lastTransitionTime = prev && prev.status === next.status && prev.lastTransitionTime ? prev.lastTransitionTime : rfc3339(now);
  const merged: Condition = { ...next, lastTransitionTime };
  if (i >= 0) list[i] = merged;
  else list.push(merged);
  return list;
}

/** RFC 3339 with second precision, as Kubernetes writes metav1.Time. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function conditionChanged(a: Condition | undefined, b: { status: ConditionStatus; reason?: string; message?: string; observedGeneration?: number }): boolean {
  return !a || a.status !== b.status || a.reason !== b.reason || a.message !== b.message || a.observedGeneration !== b.observedGeneration;
}
