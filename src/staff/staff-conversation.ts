import { randomBytes } from 'node:crypto';
import type { AssistantProfile } from '../assistant/profile.js';
import type { CallerInput, CallInfo } from '../conversation/call-engine.js';
import { HttpError } from '../errors.js';
import type { Services } from '../services.js';
import type { CallRow } from '../storage/call-repository.js';
import { TextReplyOutput } from './text-reply-output.js';

/** `calls.direction` of a conversation held through the staff test endpoints, not a phone call. */
export const staffTestDirection = 'staff-test';

/** What one exchange with the assistant produced. */
export interface StaffReply {
  sessionId: string;
  profile: string;
  /** The session's language after this exchange (it follows the staff member's words). */
  language: string;
  /** The greeting, on the exchange that started the session. */
  greeting?: string;
  /** The assistant's answer to `text` (absent when no text was sent). */
  reply?: string;
  /** Synthesized speech of the last thing said, when the profile speaks with OpenAI voices. */
  audioUrl?: string;
  /** The assistant ended the conversation (goodbye, limit). */
  ended: boolean;
}

const sessionIdPattern = /^ST[0-9a-f]{32}$/;

/**
 * Conversations with an assistant without Twilio, for staff: each session is
 * stored as a call (direction `staff-test`) and every exchange as a turn,
 * produced by the same engine as phone calls, so the dashboard shows them
 * like any other call.
 */
export class StaffConversation {
  constructor(private readonly services: Services) {}

  /** Starts a session (greeting first) or continues one, with what the staff member said, if anything. */
  async exchange(options: { profileId?: string; sessionId?: string; text?: string; staff: string; abortSignal?: AbortSignal }): Promise<StaffReply> {
    const { engine, repository } = this.services;
    let call: CallRow;
    let greeting: string | undefined;
    if (options.sessionId) {
      call = await this.session(options.sessionId);
      if (options.profileId && options.profileId !== call.profile_id) throw new HttpError('invalid_request', 'this session talks to another profile', { field: 'profile' });
    } else {
      const profile = this.profile(options.profileId);
      const sessionId = `ST${randomBytes(16).toString('hex')}`;
      call = await repository.upsertCall({
        callId: sessionId,
        from: `staff:${options.staff}`.slice(0, 64),
        to: profile.phoneNumbers[0],
        direction: staffTestDirection,
        profileId: profile.id,
        language: profile.language,
        status: 'in-progress',
      });
      const greeted = await this.turn(call, 0, undefined);
      greeting = greeted.text;
      call = greeted.call;
    }
    let reply: string | undefined;
    let ended = (await repository.listTurns(call.call_id)).at(-1)?.action === 'hangup';
    let spoken: { text: string; turnId: number } | undefined;
    const text = options.text?.trim();
    if (text && !ended) {
      if (call.status !== 'in-progress') throw new HttpError('invalid_request', 'this session has ended');
      const seq = await repository.nextTurnSeq(call.call_id);
      const answered = await this.turn(call, seq, { kind: 'speech', text, confidence: 1 });
      reply = answered.text;
      ended = answered.ended;
      call = answered.call;
      spoken = { text: answered.text, turnId: answered.turnId };
    } else if (greeting !== undefined) {
      spoken = { text: greeting, turnId: -1 };
    }
    const profile = engine.profileFor(call);
    const audioUrl = spoken?.text ? await this.speak(spoken.text, profile, call.call_id, spoken.turnId) : undefined;
    if (ended) await this.finish(call);
    return { sessionId: call.call_id, profile: call.profile_id, language: call.language, greeting, reply, audioUrl, ended };
  }

  /** Ends a session the staff member is done with: stored as a completed call. */
  async end(sessionId: string): Promise<void> {
    await this.finish(await this.session(sessionId));
  }

  private async session(sessionId: string): Promise<CallRow> {
    const call = sessionIdPattern.test(sessionId) ? await this.services.repository.getCall(sessionId) : undefined;
    if (!call || call.direction !== staffTestDirection) throw new HttpError('not_found', 'no such session', { field: 'sessionId' });
    return call;
  }

  private profile(profileId: string | undefined): AssistantProfile {
    const { profiles } = this.services;
    if (!profileId) return profiles.defaultProfile;
    const profile = profiles.byId(profileId);
    if (!profile) throw new HttpError('not_found', `no assistant profile "${profileId}"`, { field: 'profile' });
    return profile;
  }

  private async turn(call: CallRow, seq: number, input: CallerInput | undefined) {
    const info: CallInfo = { callSid: call.call_id, from: call.from_number ?? undefined, to: call.to_number ?? undefined, direction: staffTestDirection };
    const result = await this.services.engine.runTurn(info, seq, input, () => new TextReplyOutput());
    return {
      text: result.turn.assistant_text ?? '',
      turnId: result.turn.turn_id,
      ended: result.turn.action === 'hangup',
      call: result.call,
    };
  }

  /** One audio file of the whole reply; a failure leaves the text alone. */
  private async speak(text: string, profile: AssistantProfile, callId: string, turnId: number): Promise<string | undefined> {
    const { renderer, logger } = this.services;
    if (!renderer.synthesizes(profile)) return undefined;
    try {
      const speech = turnId < 0 ? await renderer.renderPhrase(text, profile) : await renderer.renderReply(text, profile, { callId, turnId });
      return speech.kind === 'audio' ? `/audio/${speech.filename}` : undefined;
    } catch (error) {
      logger.warn({ err: error, callSid: callId }, 'staff test reply could not be synthesized; answering with text only');
      return undefined;
    }
  }

  private async finish(call: CallRow): Promise<void> {
    if (call.status !== 'in-progress') return;
    await this.services.statusRecorder.record({
      callSid: call.call_id,
      status: 'completed',
      durationSeconds: Math.max(0, Math.round((Date.now() - call.started_at.getTime()) / 1000)),
      direction: staffTestDirection,
      payload: { CallSid: call.call_id, CallStatus: 'completed', Source: 'staff-test' },
    });
  }
}
