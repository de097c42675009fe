import type { AssistantProfile } from '../assistant/profile.js';
import type { RenderOwner, SpeechRenderer } from '../conversation/speech-renderer.js';
import type { SegmentRow } from '../storage/call-repository.js';

/**
 * One line in the profile's voice, ready for `replyTwiml`: synthesized audio
 * when the profile speaks with OpenAI (a shared cached phrase, or the call's
 * own audio when `owner` is given because the text is personal), else text
 * for Twilio's `<Say>`. A synthesis failure falls back to `<Say>`: the caller
 * hears the words either way.
 */
export async function spokenLine(renderer: SpeechRenderer, profile: AssistantProfile, text: string, owner?: RenderOwner): Promise<SegmentRow> {
  let filename: string | null = null;
  let audioId: string | null = null;
  try {
    const rendered = owner ? await renderer.renderReply(text, profile, owner) : await renderer.renderPhrase(text, profile);
    if (rendered.kind === 'audio') ({ filename, audioId } = rendered);
  } catch {
    // Spoken by Twilio instead.
  }
  return { turn_id: owner?.turnId ?? 0, seq: 0, text, audio_id: audioId, filename, ready_at: new Date() };
}
