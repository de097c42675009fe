import twilio from 'twilio';
import type { AssistantProfile } from '../assistant/profile.js';
import type { SegmentRow } from '../storage/call-repository.js';
import { pollyVoiceFor } from './polly-voices.js';

const { VoiceResponse } = twilio.twiml;

export interface ReplyTwimlOptions {
  profile: AssistantProfile;
  segments: SegmentRow[];
  /** Absolute URL of a piece's audio. */
  audioUrl: (filename: string) => string;
  /** What follows the pieces: listen for the next turn, hang up, come back for more pieces, or dial a person. */
  next:
    | { kind: 'listen'; actionUrl: string }
    | { kind: 'hangup' }
    | { kind: 'continue'; url: string; pauseSeconds?: number }
    | DialNext;
  /**
   * Starts recording the call before anything else runs (`<Start><Recording>`):
   * Twilio records in the background while the TwiML goes on, and reports
   * each step of the recording to `statusCallbackUrl`.
   */
  startRecording?: { statusCallbackUrl: string; channels: 'mono' | 'dual' };
}

/** `<Dial>` a person; Twilio posts `actionUrl` with `DialCallStatus` when that leg ends. */
export interface DialNext {
  kind: 'dial';
  number: string;
  actionUrl: string;
  timeoutSeconds: number;
  callerId?: string;
}

/**
 * The one place TwiML for a reply is written. Pieces with audio are played;
 * pieces without (Polly profiles, or synthesis that failed) are spoken by
 * Twilio with the language's Polly voice.
 */
export function replyTwiml(options: ReplyTwimlOptions): string {
  const response = new VoiceResponse();
  const polly = pollyVoiceFor(options.profile.language, options.profile.pollyVoice);
  if (options.startRecording) {
    response.start().recording({
      recordingStatusCallback: options.startRecording.statusCallbackUrl,
      recordingStatusCallbackMethod: 'POST',
      recordingStatusCallbackEvent: ['in-progress', 'completed', 'absent'],
      channels: options.startRecording.channels,
    });
  }
  for (const segment of options.segments) {
    if (segment.filename) response.play(options.audioUrl(segment.filename));
    // A piece that could not be synthesized after its URL was given out: its words follow as the next piece.
    else if (segment.text === '') continue;
    else response.say({ voice: polly.voice as never, language: polly.sayLanguage as never }, segment.text);
  }
  const next = options.next;
  if (next.kind === 'listen') {
    response.gather({
      input: ['speech', 'dtmf'],
      action: next.actionUrl,
      method: 'POST',
      language: options.profile.language as never,
      speechTimeout: 'auto',
      actionOnEmptyResult: true,
      finishOnKey: '#',
      timeout: 6,
    });
  } else if (next.kind === 'hangup') {
    response.hangup();
  } else if (next.kind === 'dial') {
    const dial = response.dial({ action: next.actionUrl, method: 'POST', timeout: next.timeoutSeconds, callerId: next.callerId });
    dial.number(next.number);
  } else {
    if (next.pauseSeconds) response.pause({ length: next.pauseSeconds });
    response.redirect({ method: 'POST' }, next.url);
  }
  return response.toString();
}

/** A reply that needs nothing but Twilio: used when the server cannot reach its own storage. */
export function fallbackTwiml(profile: AssistantProfile, text: string, next: ReplyTwimlOptions['next']): string {
  return replyTwiml({
    profile,
    segments: [{ turn_id: 0, seq: 0, text, audio_id: null, filename: null, ready_at: new Date() }],
    audioUrl: () => '',
    next,
  });
}

/** An empty `<Response/>`: acknowledges a callback that needs no instructions. */
export function emptyTwiml(): string {
  return new VoiceResponse().toString();
}

/**
 * Connects the call to a media stream. When the stream ends Twilio posts
 * `actionUrl`, which decides between hanging up (the conversation ended) and
 * carrying on over webhooks (the stream broke).
 */
export function connectStreamTwiml(options: { streamUrl: string; actionUrl: string; parameters: Record<string, string> }): string {
  const response = new VoiceResponse();
  const connect = response.connect({ action: options.actionUrl, method: 'POST' });
  const stream = connect.stream({ url: options.streamUrl });
  for (const [name, value] of Object.entries(options.parameters)) stream.parameter({ name, value });
  return response.toString();
}
