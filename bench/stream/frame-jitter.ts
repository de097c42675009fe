import type { StreamTimelineEvent } from '../../src/simulator/media-stream-simulator.js';

/**
 * How evenly a server's audio frames reached the simulated Twilio. Plain
 * data (histograms), so caller processes can send it over IPC and the bench
 * can merge it.
 *
 * The server sends the first `leadMs` (200 ms, `OutboundAudio`'s default) of
 * a reply at once, then one 20 ms frame per timer tick. So each reply, and
 * each restart after the caller's buffer ran dry, begins with a fill: frames
 * until the caller has about `leadMs` buffered. After the fill, frames are
 * "paced", and the deviation of each inter-arrival time from 20 ms is the
 * jitter. The first paced frame's gap is not counted (it follows the fill's
 * last frame, which the server may have sent early to top the lead up).
 *
 * Also counted: the caller's buffer ahead when a paced frame arrives (slack:
 * how close the caller came to hearing a gap), and underruns, where a frame
 * arrives after the caller's buffer ran dry mid-reply; those are audible
 * gaps, split by whether a piece boundary (a mark) came just before.
 */

const leadMs = 200;
const frameMs = 20;
/** A fill is over once this much is buffered at the caller. */
const filledMs = leadMs - frameMs;
/** Longer than any gap inside a reply (a piece's speech first byte, a tool call's second model request). */
const newReplyAfterSilenceMs = 2000;
const deviationBucketMs = 0.1;
const deviationBuckets = 2001;
const slackBuckets = 401;

export interface JitterStats {
  /** Counts of |inter-arrival − 20 ms| in 0.1 ms buckets (the last one: ≥ 200 ms). */
  deviation: number[];
  deviationMaxMs: number;
  /** Counts of the caller's buffer ahead (ms) at each paced frame, 1 ms buckets (the last one: ≥ 400 ms). */
  slack: number[];
  pacedFrames: number;
  /** Caller buffer ran dry mid-reply, right after a mark (piece boundary) or inside a piece. */
  underrunsAtPieceBoundary: number;
  underrunsInPiece: number;
  underrunGapMs: number[];
}

export function emptyJitter(): JitterStats {
  return {
    deviation: new Array<number>(deviationBuckets).fill(0),
    deviationMaxMs: 0,
    slack: new Array<number>(slackBuckets).fill(0),
    pacedFrames: 0,
    underrunsAtPieceBoundary: 0,
    underrunsInPiece: 0,
    underrunGapMs: [],
  };
}

export function mergeJitter(into: JitterStats, other: JitterStats): JitterStats {
  other.deviation.forEach((count, index) => (into.deviation[index] += count));
  other.slack.forEach((count, index) => (into.slack[index] += count));
  into.deviationMaxMs = Math.max(into.deviationMaxMs, other.deviationMaxMs);
  into.pacedFrames += other.pacedFrames;
  into.underrunsAtPieceBoundary += other.underrunsAtPieceBoundary;
  into.underrunsInPiece += other.underrunsInPiece;
  into.underrunGapMs.push(...other.underrunGapMs);
  return into;
}

/**
 * Adds one call's frames that arrived inside `window` (epoch ms).
 * `replyStarts` (epoch ms, ascending): from each, the next frame to arrive
 * begins a new reply, whose fill is expected, not an underrun.
 */
export function addTimeline(
  stats: JitterStats,
  timeline: readonly StreamTimelineEvent[],
  openedAt: number,
  replyStarts: readonly number[],
  window: { from: number; to: number },
): void {
  let nextStart = 0;
  let previous: { atMs: number; playsAtMs: number } | undefined;
  let filled = false;
  let pacedBefore = false;
  let markSince = false;
  for (const event of timeline) {
    if (event.type === 'mark-received') markSince = true;
    if (event.type === 'playback-cleared') previous = undefined;
    if (event.type !== 'audio-received') continue;
    const at = openedAt + event.atMs;
    // Audio after a long silence the caller did not ask for is a new reply (a reprompt), not a gap in one.
    let newReply = previous === undefined || event.atMs - previous.playsAtMs > newReplyAfterSilenceMs;
    while (nextStart < replyStarts.length && replyStarts[nextStart] < at) {
      nextStart++;
      newReply = true;
    }
    const slack = event.playsAtMs - event.atMs;
    const inWindow = at >= window.from && at <= window.to;
    if (!newReply && slack < 0.5 && previous) {
      if (inWindow) {
        if (markSince) stats.underrunsAtPieceBoundary++;
        else stats.underrunsInPiece++;
        stats.underrunGapMs.push(event.atMs - (previous.playsAtMs + frameMs));
      }
    }
    if (newReply || slack < 0.5) {
      filled = false;
      pacedBefore = false;
    } else if (filled) {
      if (pacedBefore && previous && inWindow) {
        const deviation = Math.abs(event.atMs - previous.atMs - frameMs);
        stats.deviation[Math.min(deviationBuckets - 1, Math.round(deviation / deviationBucketMs))]++;
        stats.deviationMaxMs = Math.max(stats.deviationMaxMs, deviation);
        stats.slack[Math.min(slackBuckets - 1, Math.max(0, Math.floor(slack)))]++;
        stats.pacedFrames++;
      }
      pacedBefore = true;
    }
    if (slack >= filledMs) filled = true;
    previous = event;
    markSince = false;
  }
}

/** Percentile (0–100) of the jitter histogram, in ms. */
export function deviationPercentile(stats: JitterStats, q: number): number {
  return histogramPercentile(stats.deviation, q) * deviationBucketMs;
}

/** Low percentile of the caller's buffer ahead, in ms. */
export function slackPercentile(stats: JitterStats, q: number): number {
  return histogramPercentile(stats.slack, q);
}

function histogramPercentile(counts: readonly number[], q: number): number {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return Number.NaN;
  const rank = Math.ceil((q / 100) * total);
  let seen = 0;
  for (let index = 0; index < counts.length; index++) {
    seen += counts[index];
    if (seen >= rank) return index;
  }
  return counts.length - 1;
}
