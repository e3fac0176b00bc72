// What the benchmarks read of a process from /proc: its CPU time and its resident memory. No
// imports beyond node:fs, so that the bare worker's bundle (whose memory is a measured baseline)
// and the live worker's both take it as it is.
import { readFileSync } from 'node:fs';

/** One clock tick of /proc's CPU counters, in ms (USER_HZ = 100). */
export const TICK_MS = 10;

/** The command name and the CPU time (user + system, ms) in the text of a /proc/<pid>/stat. */
export function parseStat(stat: string): { comm: string; cpuMs: number } {
  const close = stat.lastIndexOf(')'); // the command name may hold spaces and parentheses
  const fields = stat.slice(close + 2).split(' ');
  return { comm: stat.slice(stat.indexOf('(') + 1, close), cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS }; // utime, stime
}

/** CPU time (user + system, ms) a process has used so far. */
export function cpuMs(pid: number | 'self'): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuMs;
}

export function rssMiB(pid: number | 'self', field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
