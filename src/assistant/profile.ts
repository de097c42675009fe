import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { speechModels, speechVoices } from '../providers/speech-model.js';
import { outboundSettingsSchema, recordingSettingsSchema, transferSettingsSchema } from './telephony-settings.js';
import { knowledgeRetrievalSchema, knowledgeSourcesSchema } from '../knowledge/knowledge-settings.js';
import { profileLanguagesSchema } from '../languages/profile-languages.js';
import { reservationSettingsSchema } from '../reservations/reservation-settings.js';

const detailSchema = z.object({
  /** Key the detail is stored under, e.g. `party_size`. */
  name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'use lower_snake_case'),
  /** What the detail is, for the model. */
  description: z.string().min(1),
  /** How the scripted assistant asks for it. */
  question: z.string().min(1),
  type: z.enum(['text', 'integer', 'date', 'time', 'phone']).default('text'),
});

const phrasesSchema = z.object({
  /** Said when the caller was silent. */
  repeat: z.string().min(1),
  /** Said when speech was recognised with too little confidence. */
  unclear: z.string().min(1),
  /** Said when a provider failed; the call goes on. */
  apology: z.string().min(1),
  /** Said before hanging up after too many silences. */
  noInputGoodbye: z.string().min(1),
  /** Said with `end_call` when the model gave no words of its own. */
  goodbye: z.string().min(1),
  /** Scripted confirmation; `{details}` is replaced with the collected values. */
  confirm: z.string().min(1),
  /** Said (then the call is hung up) when a number calls more often than the hourly limit allows. */
  tooManyCalls: z.string().min(1).default('We are receiving too many calls from your number right now. Please try again later. Goodbye!'),
  /** Said (then the call is hung up) when the call reaches `maxTurns` or its maximum length. */
  limitReached: z.string().min(1).default('We have reached the time we can spend on one call, so I have to end it here. Thank you for calling. Goodbye!'),
});

export const profileSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  name: z.string().min(1),
  /** BCP-47 tag used for `<Gather language>` and `<Say language>`, e.g. `en-US`. */
  language: z.string().regex(/^[a-z]{2}-[A-Z]{2}$/, 'expected a tag such as en-US'),
  /** `openai`: OpenAI TTS played with `<Play>`; `polly`: Twilio's `<Say>` with an Amazon Polly voice. */
  speech: z.enum(['openai', 'polly']).default('openai'),
  voice: z.enum(speechVoices).default('alloy'),
  ttsModel: z.enum(speechModels).default('tts-1'),
  speed: z.number().min(0.25).max(4).default(1),
  /** Overrides the Polly voice picked for the language. */
  pollyVoice: z.string().optional(),
  /** Chat model; defaults to `OPENAI_CHAT_MODEL`. */
  chatModel: z.string().optional(),
  systemPrompt: z.string().min(1),
  greeting: z.string().min(1),
  /** Facts the assistant may answer from (menu, hours, address). */
  knowledge: z.string().default(''),
  /** Markdown files or folders (menu, hours, policies), relative to the profile file; see src/knowledge. */
  knowledgeSources: knowledgeSourcesSchema,
  knowledgeRetrieval: knowledgeRetrievalSchema,
  /** Languages callers may switch to besides `language` (detected from their words, or asked for). */
  languages: profileLanguagesSchema,
  details: z.array(detailSchema).default([]),
  phrases: phrasesSchema,
  /** Numbers (E.164) this profile answers; the default profile answers the rest. */
  phoneNumbers: z.array(z.string()).default([]),
  /** Model-driven calls end after this many caller turns, politely (the last answer is followed by `phrases.limitReached`). */
  maxTurns: z.number().int().min(1).max(200).default(40),
  /** Webhook and stream calls end politely after this long; when unset, `stream.maxCallSeconds` (900 by default). */
  maxCallSeconds: z.number().int().min(30).max(7200).optional(),
  /** Opening hours and capacity: with this block the assistant takes reservations (see src/reservations). */
  reservations: reservationSettingsSchema,
  /** Greeting for a caller recognised by number (`{name}` is the name they last gave); the usual greeting when unset. */
  returningCallerGreeting: z.string().min(1).optional(),
  /** Call recording with a spoken disclosure (see src/recordings). */
  recording: recordingSettingsSchema,
  /** Hand-off to a person with `<Dial>`; a message is taken when nobody answers (see src/transfer). */
  transfer: transferSettingsSchema,
  /** What the assistant says on calls it places, per purpose (see src/outbound). */
  outbound: outboundSettingsSchema,
  /**
   * How audio reaches the caller: `webhook` (Twilio's `<Gather>` and `<Play>`),
   * `stream` (a media stream: voice activity detection → transcription → streamed
   * model → streamed speech, with barge-in) or `realtime` (OpenAI's Realtime API,
   * speech to speech, over a media stream).
   */
  mode: z.enum(['webhook', 'stream', 'realtime']).default('webhook'),
  /** Turn-taking on media streams. */
  stream: z
    .object({
      /** Silence after speech that ends the caller's turn. */
      endOfSpeechMs: z.number().int().min(200).max(3000).default(600),
      /**
       * Speech shorter than this does not interrupt the assistant. Silero hears
       * "mhm" and "uh-huh" as up to ~0.55 s of speech, so this is also how long
       * a caller must talk before cutting in. While the assistant listens, a
       * short "yes" still counts.
       */
      minSpeechMs: z.number().int().min(50).max(2000).default(600),
      /** Silence after the assistant finished that earns a reprompt. */
      silenceRepromptMs: z.number().int().min(2000).max(60000).default(8000),
      /** The call ends politely after this long. */
      maxCallSeconds: z.number().int().min(30).max(7200).default(900),
      /** Transcription model for `stream` mode. */
      transcriptionModel: z.string().default('gpt-4o-mini-transcribe'),
      /** Speech-to-speech model for `realtime` mode. */
      realtimeModel: z.string().default('gpt-realtime'),
    })
    .default({ endOfSpeechMs: 600, minSpeechMs: 600, silenceRepromptMs: 8000, maxCallSeconds: 900, transcriptionModel: 'gpt-4o-mini-transcribe', realtimeModel: 'gpt-realtime' }),
});

export type AssistantProfile = z.infer<typeof profileSchema>;
export type DetailSpec = AssistantProfile['details'][number];

export class ProfileError extends Error {}

/** Loads and validates one profile file (JSON). */
export async function loadProfileFile(file: string): Promise<AssistantProfile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ProfileError(`cannot read assistant profile ${file}: ${(error as Error).message}`);
  }
  const parsed = profileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ProfileError(`assistant profile ${file} is not valid:\n  - ${problems.join('\n  - ')}`);
  }
  const base = path.dirname(path.resolve(file));
  return { ...parsed.data, knowledgeSources: parsed.data.knowledgeSources.map((source) => path.resolve(base, source)) };
}

/** The profiles a server answers with: one default, others picked by the called number. */
export interface ProfileSet {
  defaultProfile: AssistantProfile;
  all: AssistantProfile[];
  /** The profile for a call to `calledNumber`. */
  forNumber(calledNumber: string | undefined): AssistantProfile;
  byId(id: string): AssistantProfile | undefined;
}

/**
 * Loads every `*.json` in `directory`. `selected` is a profile id in that
 * directory or a path to a profile file (which then joins the set).
 */
export async function loadProfiles(directory: string, selected: string): Promise<ProfileSet> {
  const files = (await readdir(directory).catch(() => [] as string[]))
    .filter((name) => name.endsWith('.json'))
    .map((name) => path.join(directory, name));
  const selectedIsFile = selected.endsWith('.json') || selected.includes('/');
  if (selectedIsFile && !files.some((file) => path.resolve(file) === path.resolve(selected))) files.push(selected);
  const all = await Promise.all(files.map(loadProfileFile));
  const ids = new Set<string>();
  for (const profile of all) {
    if (ids.has(profile.id)) throw new ProfileError(`two assistant profiles have the id "${profile.id}"`);
    ids.add(profile.id);
  }
  const defaultProfile = selectedIsFile
    ? all[files.findIndex((file) => path.resolve(file) === path.resolve(selected))]
    : all.find((profile) => profile.id === selected);
  if (!defaultProfile) {
    const known = all.map((profile) => profile.id).join(', ') || 'none';
    throw new ProfileError(`ASSISTANT_PROFILE "${selected}" was not found in ${directory} (found: ${known})`);
  }
  return {
    defaultProfile,
    all,
    forNumber: (calledNumber) =>
      all.find((profile) => calledNumber !== undefined && profile.phoneNumbers.includes(calledNumber)) ?? defaultProfile,
    byId: (id) => all.find((profile) => profile.id === id),
  };
}
