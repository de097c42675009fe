import { readFile } from 'node:fs/promises';

/**
 * How busy the whole machine was while a level ran, and how much of that was
 * not the bench's own processes (server, fake, bench): on a shared machine,
 * another job's CPU shows up as latency the server did not cause. Linux only
 * (/proc); elsewhere the figures are NaN.
 */
export interface MachineLoad {
  /** CPU cores busy on average, all processes. */
  busyCores: number;
  /** Of those, cores used by processes other than the ones watched. */
  otherCores: number;
}

interface Snapshot {
  at: number;
  machineTicks: number;
  watchedTicks: number;
}

const ticksPerSecond = 100;

export async function snapshotLoad(pids: number[]): Promise<Snapshot> {
  const [machine, ...watched] = await Promise.all([machineBusyTicks(), ...pids.map(processTicks)]);
  return { at: performance.now(), machineTicks: machine, watchedTicks: watched.reduce((sum, ticks) => sum + ticks, 0) };
}

export function loadBetween(before: Snapshot, after: Snapshot): MachineLoad {
  const seconds = (after.at - before.at) / 1000;
  const busyCores = (after.machineTicks - before.machineTicks) / ticksPerSecond / seconds;
  const watchedCores = (after.watchedTicks - before.watchedTicks) / ticksPerSecond / seconds;
  return { busyCores, otherCores: Math.max(0, busyCores - watchedCores) };
}

async function machineBusyTicks(): Promise<number> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return user + nice + system + irq + softirq + steal;
  } catch {
    return Number.NaN;
  }
}

async function processTicks(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}
