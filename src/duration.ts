const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The one duration grammar of every binary and flag: a Go-style duration (`15s`, `1m30s`, `500ms`,
 * `2h`), days too (`365d`, which Go lacks), or a plain number of seconds; into milliseconds.
 * Throws an error naming `what` on anything else.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (s.length === 0 || matched !== s.length) throw new Error(`invalid ${what} "${text}": use a number of seconds or a duration like 15s, 10m, 1h30m, 500ms, 90d`);
  return Math.round(total);
}
