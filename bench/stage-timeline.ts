import pg from 'pg';
import { callSidFor, type TurnSample } from './bench-caller.js';
import type { FakeRequestSummary } from './fake-openai-process.js';
import { matchFloors } from './floors.js';
import { summarize, type Summary } from './stats.js';

/**
 * Where "measured − floor" went, stage by stage, for a server on PostgreSQL:
 * the server's own timestamps (webhook received, audio row, reply segment, kept
 * webhook answer; microseconds, same machine clock) between the bench's and
 * the fake's. Only the first piece's path is followed. When the TwiML naming
 * the first piece arrived before its audio existed, the stores and the answer
 * were not on that path: the download was already waiting when the speech
 * finished, and the last stage is all that follows the speech.
 */
export interface StageFigure {
  stage: string;
  ms: Summary;
}

const stages = [
  'webhook sent → webhook received (HTTP, signature check, parsing)',
  'webhook received → chat request at the fake (call lookup, claim with the history, knowledge search, prompt, HTTP)',
  'first piece complete at the fake → its speech request (SSE parsing, chunker)',
  "speech's last byte due → speech response finished (the fake late, or the server reading late)",
  'speech finished → audio row stored (conversion, file write, INSERT)',
  'audio row → reply segment stored (INSERT)',
  'segment stored → webhook answer stored (wake-up, readReply, grace wait, TwiML, INSERT)',
  'answer stored → TwiML received by the caller',
  'first <Play> download',
  'speech finished → waiting <Play> download answered (its URL was in the TwiML before the audio existed)',
] as const;

export async function readStages(
  databaseUrl: string,
  turns: readonly TurnSample[],
  requests: readonly FakeRequestSummary[],
  pipelined: boolean,
): Promise<StageFigure[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let rows: Array<Record<string, string | number | null>>;
  try {
    ({ rows } = await client.query(`
      SELECT t.call_id, t.seq,
             extract(epoch FROM t.received_at) * 1000 AS claimed,
             extract(epoch FROM a.created_at) * 1000 AS audio_stored,
             extract(epoch FROM s.ready_at) * 1000 AS segment_stored,
             extract(epoch FROM w.created_at) * 1000 AS answer_stored
        FROM turns t
        JOIN reply_segments s ON s.turn_id = t.turn_id AND s.seq = 0
        JOIN audio_files a ON a.audio_id = s.audio_id
        JOIN webhook_responses w ON w.turn_id = t.turn_id AND w.from_seq = 0
       WHERE t.call_id = ANY($1::text[])`, [[...new Set(turns.map((turn) => callSidFor(turn.callIndex)))]]));
  } finally {
    await client.end();
  }
  const rowOf = new Map(rows.map((row) => [`${row.call_id}#${row.seq}`, row]));
  const chats = new Map(requests.filter((request) => request.endpoint === 'chat').map((request) => [`${request.callerNumber}#${request.turn}`, request]));
  const match = matchFloors(turns, requests, pipelined);
  const values: number[][] = stages.map(() => []);
  for (const turn of turns) {
    const floor = match.floors.get(turn);
    const row = rowOf.get(`${callSidFor(turn.callIndex)}#${turn.turn}`);
    const chat = chats.get(`${turn.callerNumber}#${turn.turn}`);
    if (!floor || !row || !chat || turn.firstAudioMs === undefined) continue;
    const speech = floor.speech;
    if (!speech || speech.finishedAt === undefined || speech.injected?.endpoint !== 'speech') continue;
    const at = (name: string) => Number(row[name]);
    const points = [
      turn.t0,
      at('claimed'),
      chat.receivedAt,
      chat.receivedAt + floor.chatMs,
      speech.receivedAt,
      speech.receivedAt + speech.injected.lastByteMs,
      speech.finishedAt,
      at('audio_stored'),
      at('segment_stored'),
      at('answer_stored'),
      turn.t0 + turn.firstWebhookMs,
      turn.t0 + turn.firstAudioMs,
    ];
    // Between chat request and first piece, and between speech request and its last byte, is the floor itself.
    const common = [points[1] - points[0], points[2] - points[1], points[4] - points[3], points[6] - points[5]];
    const answeredEarly = points[10] < points[6];
    const spans = answeredEarly
      ? [...common, Number.NaN, Number.NaN, Number.NaN, Number.NaN, Number.NaN, points[11] - points[6]]
      : [...common, points[7] - points[6], points[8] - points[7], points[9] - points[8], points[10] - points[9], points[11] - points[10], Number.NaN];
    spans.forEach((span, index) => values[index].push(span));
  }
  return stages.map((stage, index) => ({ stage, ms: summarize(values[index]) })).filter((figure) => figure.ms.count > 0);
}
