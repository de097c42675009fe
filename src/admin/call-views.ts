import type { AssistantProfile, ProfileSet } from '../assistant/profile.js';
import type { TurnRow } from '../storage/call-repository.js';
import type { CallEventRow, CallListRow, LiveCallRow, TurnAudioRow } from './admin-repository.js';
import { maskPhoneNumber } from './phone-mask.js';
import { costOf, type Cost, type PriceTable, type Usage } from './pricing.js';
import type { TelephonyDetail } from './telephony-views.js';

/** How a call ended, as an operator reads it. Unknown values are shown as stored. */
export const outcomeLabels: Record<string, string> = {
  'details-collected': 'Details collected',
  completed: 'Assistant said goodbye',
  'hung-up': 'Caller hung up',
  'no-input': 'No input',
  'limit-reached': 'Call limit reached',
  transferred: 'Transferred',
  voicemail: 'Voicemail left',
  fax: 'Fax answered',
  failed: 'Failed',
  missed: 'Missed',
  'in-progress': 'In progress',
  unknown: 'Unknown',
};

export function outcomeLabel(outcome: string | null, ended: boolean): string {
  const key = outcome ?? (ended ? 'unknown' : 'in-progress');
  return outcomeLabels[key] ?? key;
}

/** One row of the calls list (and of `GET /api/calls`). */
export interface CallSummary {
  callSid: string;
  status: string;
  from: string | null;
  to: string | null;
  direction: string | null;
  profileId: string;
  mode: string;
  startedAt: string;
  endedAt: string | null;
  durationSeconds: number | null;
  /** Caller turns (the greeting not counted). */
  turns: number;
  errors: number;
  outcome: string | null;
  outcomeLabel: string;
  usage: Usage;
  cost: Cost;
}

/** One stretch of a turn's reply path, in milliseconds from the turn's start. */
export interface LatencyStage {
  name: string;
  label: string;
  startMs: number;
  endMs: number;
}

export interface TurnAudio {
  url: string | null;
  text: string;
  contentType: string | null;
  durationMs: number | null;
  /** False when retention deleted it. */
  available: boolean;
  /** A cached phrase every call shares (kept whatever the retention). */
  shared: boolean;
}

export interface TurnView {
  seq: number;
  kind: string;
  status: string;
  caller: { text: string | null; confidence: number | null; at: string } | null;
  assistant: { text: string | null; at: string | null; mode: string | null; interrupted: boolean };
  action: string | null;
  error: { code: string; message: string | null } | null;
  toolCalls: unknown[];
  usage: { promptTokens: number; completionTokens: number; ttsCharacters: number };
  latency: { stages: LatencyStage[]; timeToFirstAudioMs: number | null; totalMs: number | null };
  audio: TurnAudio[];
}

export interface CallDetail extends CallSummary {
  language: string;
  assistantMode: string;
  details: Record<string, unknown>;
  audioRetention: { applied: string | null; expiresAt: string | null; deletedAt: string | null };
  conversation: TurnView[];
  events: Array<{ status: string; sequenceNumber: number | null; at: string }>;
  /** Recordings, hand-offs to a person, and the request behind a call this server placed. */
  recordings?: TelephonyDetail['recordings'];
  transfers?: TelephonyDetail['transfers'];
  outbound?: TelephonyDetail['outbound'];
}

/** A call in progress, as the live page shows it. */
export interface LiveCallView {
  callSid: string;
  from: string | null;
  to: string | null;
  profileId: string;
  profileName: string;
  status: string;
  mode: string;
  startedAt: string;
  turns: number;
  details: Record<string, unknown>;
  latestTurn: {
    seq: number;
    kind: string;
    status: string;
    callerText: string | null;
    confidence: number | null;
    assistantText: string | null;
    at: string;
  } | null;
}

/** Turns rows into what the API answers and the pages show: numbers masked when asked, costs priced. */
export class CallViews {
  constructor(
    private readonly deps: { profiles: ProfileSet; defaultChatModel: string; prices: PriceTable; maskPhoneNumbers: boolean },
  ) {}

  phone(value: string | null): string | null {
    return value === null || !this.deps.maskPhoneNumbers ? value : maskPhoneNumber(value);
  }

  profile(profileId: string): AssistantProfile {
    return this.deps.profiles.byId(profileId) ?? this.deps.profiles.defaultProfile;
  }

  /** The models a call of this profile and mode was served by, for pricing. */
  models(profileId: string, mode: string): Pick<Usage, 'chatModel' | 'speechModel' | 'transcriptionModel'> {
    const profile = this.profile(profileId);
    const realtime = mode === 'realtime';
    return {
      chatModel: realtime ? profile.stream.realtimeModel : profile.chatModel ?? this.deps.defaultChatModel,
      speechModel: profile.speech === 'openai' && !realtime ? profile.ttsModel : undefined,
      transcriptionModel: realtime ? undefined : mode === 'stream' ? profile.stream.transcriptionModel : 'twilio-speech-recognition',
    };
  }

  usage(row: { profile_id: string; mode: string; prompt_tokens: number; completion_tokens: number; tts_characters: number; speech_seconds: number }, billedMinutes: number): Usage {
    return {
      ...this.models(row.profile_id, row.mode),
      promptTokens: row.prompt_tokens,
      completionTokens: row.completion_tokens,
      ttsCharacters: row.tts_characters,
      transcriptionSeconds: row.speech_seconds,
      billedMinutes,
    };
  }

  cost(usage: Usage): Cost {
    return costOf(usage, this.deps.prices);
  }

  summary(row: CallListRow): CallSummary {
    const usage = this.usage(row, row.duration_seconds === null ? 0 : Math.ceil(row.duration_seconds / 60));
    return {
      callSid: row.call_id,
      status: row.status,
      from: this.phone(row.from_number),
      to: this.phone(row.to_number),
      direction: row.direction,
      profileId: row.profile_id,
      mode: row.mode,
      startedAt: row.started_at.toISOString(),
      endedAt: row.ended_at?.toISOString() ?? null,
      durationSeconds: row.duration_seconds,
      turns: row.turn_count,
      errors: row.error_count,
      outcome: row.outcome,
      outcomeLabel: outcomeLabel(row.outcome, row.ended_at !== null),
      usage,
      cost: this.cost(usage),
    };
  }

  live(row: LiveCallRow): LiveCallView {
    return {
      callSid: row.call_id,
      from: this.phone(row.from_number),
      to: this.phone(row.to_number),
      profileId: row.profile_id,
      profileName: this.profile(row.profile_id).name,
      // Twilio reports in-progress only to a status callback asked for it; a call that got its greeting is answered.
      status: (row.status === 'ringing' || row.status === 'queued') && row.latest_seq !== null ? 'in-progress' : row.status,
      mode: row.mode,
      startedAt: row.started_at.toISOString(),
      turns: row.turn_count,
      details: this.maskDetails(row.profile_id, row.details),
      latestTurn:
        row.latest_seq === null
          ? null
          : {
              seq: row.latest_seq,
              kind: row.latest_kind ?? 'speech',
              status: row.latest_status ?? 'processing',
              callerText: row.latest_user_text,
              confidence: row.latest_confidence,
              assistantText: row.latest_assistant_text,
              at: (row.latest_at ?? row.started_at).toISOString(),
            },
    };
  }

  /** Collected details with the values of `phone` details masked when numbers are. */
  maskDetails(profileId: string, details: Record<string, unknown> | null): Record<string, unknown> {
    const phoneDetails = new Set(this.profile(profileId).details.filter((detail) => detail.type === 'phone').map((detail) => detail.name));
    return Object.fromEntries(
      Object.entries(details ?? {}).map(([key, value]) => [key, phoneDetails.has(key) && typeof value === 'string' ? this.phone(value) : value]),
    );
  }

  detail(row: CallListRow, turns: TurnRow[], audio: TurnAudioRow[], events: CallEventRow[]): CallDetail {
    return {
      ...this.summary(row),
      language: row.language,
      assistantMode: row.assistant_mode,
      details: this.maskDetails(row.profile_id, row.details),
      audioRetention: {
        applied: row.audio_retention,
        expiresAt: row.audio_expires_at?.toISOString() ?? null,
        deletedAt: row.audio_deleted_at?.toISOString() ?? null,
      },
      conversation: turns.map((turn) => turnView(turn, audio.filter((file) => Number(file.turn_id) === Number(turn.turn_id)))),
      events: events.map((event) => ({ status: event.status, sequenceNumber: event.sequence_number, at: event.received_at.toISOString() })),
    };
  }
}

function turnView(turn: TurnRow, audio: TurnAudioRow[]): TurnView {
  const spoke = turn.kind !== 'greeting';
  return {
    seq: turn.seq,
    kind: turn.kind,
    status: turn.status,
    caller: spoke ? { text: turn.user_text, confidence: turn.confidence, at: turn.received_at.toISOString() } : null,
    assistant: {
      text: turn.assistant_text,
      at: (turn.first_frame_at ?? turn.first_audio_at ?? turn.completed_at)?.toISOString() ?? null,
      mode: turn.assistant_mode,
      interrupted: turn.interrupted,
    },
    action: turn.action,
    error: turn.error_code ? { code: turn.error_code, message: turn.error_message } : null,
    toolCalls: turn.tool_calls,
    usage: { promptTokens: turn.prompt_tokens, completionTokens: turn.completion_tokens, ttsCharacters: turn.tts_characters },
    latency: latencyOf(turn),
    audio: audio.map((file) => ({
      url: file.filename && !file.deleted_at ? `/audio/${file.filename}` : null,
      text: file.text,
      contentType: file.content_type,
      durationMs: file.duration_ms,
      available: Boolean(file.filename && !file.deleted_at),
      shared: file.shared,
    })),
  };
}

/** The reply path's timestamps in the order they happen; each stage is named after the moment that ends it. */
const stageMarks: Array<{ column: keyof TurnRow; name: string; label: string }> = [
  { column: 'speech_ended_at', name: 'speech-ended', label: 'Caller stopped speaking' },
  { column: 'received_at', name: 'received', label: 'Webhook received' },
  { column: 'transcript_final_at', name: 'transcription', label: 'Transcription' },
  { column: 'llm_first_token_at', name: 'model', label: 'Model: first token' },
  { column: 'first_text_at', name: 'first-sentence', label: 'First sentence written' },
  { column: 'tts_first_byte_at', name: 'synthesis', label: 'Speech: first byte' },
  { column: 'first_audio_at', name: 'first-audio', label: 'First audio playable' },
  { column: 'first_frame_at', name: 'first-frame', label: 'First audio frame sent' },
  { column: 'completed_at', name: 'complete', label: 'Reply complete' },
];

/** A turn's stages from the first recorded moment: a waterfall of where its time went. */
export function latencyOf(turn: TurnRow): TurnView['latency'] {
  const marks = stageMarks
    .map((mark) => ({ ...mark, at: turn[mark.column] instanceof Date ? (turn[mark.column] as Date).getTime() : undefined }))
    .filter((mark): mark is typeof mark & { at: number } => mark.at !== undefined);
  if (marks.length === 0) return { stages: [], timeToFirstAudioMs: null, totalMs: null };
  const origin = marks[0].at;
  const stages: LatencyStage[] = [];
  for (let index = 1; index < marks.length; index += 1) {
    const startMs = Math.max(0, stages.at(-1)?.endMs ?? 0);
    stages.push({ name: marks[index].name, label: marks[index].label, startMs, endMs: Math.max(startMs, marks[index].at - origin) });
  }
  const start = (turn.speech_ended_at ?? turn.received_at).getTime();
  const firstAudio = turn.first_frame_at ?? turn.first_audio_at;
  return {
    stages,
    timeToFirstAudioMs: firstAudio ? Math.max(0, firstAudio.getTime() - start) : null,
    totalMs: stages.at(-1)?.endMs ?? null,
  };
}
