import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and tells where
 * the time went: self time per function, and total (inclusive) time per
 * function of callme's own code, so a slow path shows up with its callers.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionTime {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Time not idle (the program or garbage collection). */
  busyMs: number;
  self: FunctionTime[];
  inclusive: FunctionTime[];
  /** Self time by where the code lives: callme's files, each package, Node's internals, WebAssembly, GC. */
  byOrigin: FunctionTime[];
}

export async function summarizeCpuProfile(file: string, top = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    // Transpiled modules often report line 0: then the file alone says more.
    const where = url ? `${shorten(url)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : '';
    return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
  };
  const self = new Map<string, number>();
  const origins = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    totalMs += ms;
    const node = byId.get(id);
    if (!node) return;
    const name = label(node);
    if (node.callFrame.functionName === '(idle)') idleMs += ms;
    self.set(name, (self.get(name) ?? 0) + ms);
    const origin = originOf(node, (wasm) => {
      // WebAssembly is PGlite on the database's thread and the resampling kernel on the event loop: named by the code that called it.
      let caller = byId.get(parent.get(wasm.id) ?? -1);
      while (caller && (caller.callFrame.url.startsWith('wasm://') || !caller.callFrame.url)) caller = byId.get(parent.get(caller.id) ?? -1);
      return caller ? originOf(caller, () => 'WebAssembly') : 'unknown';
    });
    origins.set(origin, (origins.get(origin) ?? 0) + ms);
    const seen = new Set<string>();
    for (let current: ProfileNode | undefined = node; current; current = byId.get(parent.get(current.id) ?? -1)) {
      if (!current.callFrame.url.includes('/src/')) continue;
      const frame = label(current);
      if (seen.has(frame)) continue;
      seen.add(frame);
      inclusive.set(frame, (inclusive.get(frame) ?? 0) + ms);
    }
  });
  const busyMs = totalMs - idleMs;
  const rank = (map: Map<string, number>) =>
    [...map.entries()]
      .filter(([name]) => !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, percent: (100 * ms) / Math.max(busyMs, 1) }));
  return { file, totalMs, busyMs, self: rank(self), inclusive: rank(inclusive), byOrigin: rank(origins) };
}

export function formatProfileSummary(summary: ProfileSummary): string {
  const lines = [`${path.relative(process.cwd(), summary.file)}: ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.totalMs / 1000).toFixed(1)} s`];
  lines.push('  self time by origin (% of busy):');
  for (const entry of summary.byOrigin.slice(0, 10)) lines.push(`    ${entry.percent.toFixed(1).padStart(5)} %  ${(entry.ms / 1000).toFixed(2).padStart(7)} s  ${entry.name}`);
  lines.push('  self time (% of busy):');
  for (const entry of summary.self) lines.push(`    ${entry.percent.toFixed(1).padStart(5)} %  ${(entry.ms / 1000).toFixed(2).padStart(7)} s  ${entry.name}`);
  lines.push("  total time in callme's own functions (% of busy):");
  for (const entry of summary.inclusive) lines.push(`    ${entry.percent.toFixed(1).padStart(5)} %  ${(entry.ms / 1000).toFixed(2).padStart(7)} s  ${entry.name}`);
  return lines.join('\n');
}

function originOf(node: ProfileNode, wasmCaller: (node: ProfileNode) => string): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : 'native';
  if (url.startsWith('wasm://')) return `WebAssembly, called from ${wasmCaller(node)}`;
  const modules = url.lastIndexOf('/node_modules/');
  if (modules !== -1) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return `package ${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const source = url.indexOf('/src/');
  if (source !== -1) return url.slice(source + 1);
  return url.startsWith('node:') ? 'Node.js internals' : url;
}

function shorten(url: string): string {
  const source = url.indexOf('/src/');
  if (source !== -1) return url.slice(source + 1);
  const modules = url.lastIndexOf('/node_modules/');
  if (modules !== -1) return url.slice(modules + '/node_modules/'.length);
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
}
