/**
 * CPU time and resident memory of a process, read from Linux's /proc, so
 * every server under test (a relay, the baseline, the floor) is measured
 * the same way, from the outside.
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's CPU times; 100 on every Linux we run. */
const TICKS_PER_SECOND = 100;

export interface ProcessSample {
  /** User plus system CPU, in seconds, since the process started. */
  cpuSeconds: number;
  rssBytes: number;
}

/** Reads a process's CPU and RSS; undefined when it has exited. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name, in parentheses, may hold spaces; fields follow it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);

    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);

    return {
      cpuSeconds: (utime + stime) / TICKS_PER_SECOND,
      rssBytes: rssKib * 1024,
    };
  } catch {
    return undefined;
  }
}

/** Samples of several processes; CPU and RSS summed over those alive. */
export function sampleProcesses(pids: readonly number[]): ProcessSample {
  let cpuSeconds = 0;
  let rssBytes = 0;
  for (const pid of pids) {
    const sample = sampleProcess(pid);
    cpuSeconds += sample?.cpuSeconds ?? 0;
    rssBytes += sample?.rssBytes ?? 0;
  }
  return { cpuSeconds, rssBytes };
}
