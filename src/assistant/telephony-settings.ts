import { z } from 'zod';

const e164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'expected an E.164 number such as +15551234567');

/** Call recording: off unless a profile turns it on, and then always announced. */
export const recordingSettingsSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Said before the greeting on every recorded call. */
    disclosure: z.string().min(1).default('This call is recorded for quality and training purposes.'),
    /** `dual` keeps the caller and the assistant on separate channels. */
    channels: z.enum(['mono', 'dual']).default('mono'),
  })
  .default({ enabled: false, disclosure: 'This call is recorded for quality and training purposes.', channels: 'mono' });

/** Hand-off to a person. Without it the `transfer_to_human` tool is not offered. */
export const transferSettingsSchema = z
  .object({
    /** Who takes over (E.164). */
    number: e164,
    /** Said right before dialling. */
    handoffLine: z.string().min(1).default("One moment please, I'm putting you through to a colleague."),
    /** Seconds the colleague's phone rings before the assistant takes a message instead. */
    timeoutSeconds: z.number().int().min(5).max(120).default(20),
    /** Said when nobody answered; the caller's next words are taken as the message. */
    unavailableLine: z
      .string()
      .min(1)
      .default("I'm sorry, nobody can take your call right now. Please leave a short message after this, and we'll call you back."),
    /** Said once the message is taken, before hanging up. */
    messageTakenLine: z.string().min(1).default("Thank you, I've passed on your message. Goodbye!"),
    /** Number shown to the colleague; the caller's own number when unset. */
    callerId: e164.optional(),
  })
  .optional();

const purposeSchema = z.object({
  /** Said when a person answers. `{business}` and `{details}` are filled in. */
  greeting: z.string().min(1),
  /** Left on an answering machine, then the call hangs up. Same placeholders. */
  voicemail: z.string().min(1),
  /** What the assistant is told about the call it placed. */
  instructions: z.string().default(''),
});

export type OutboundPurpose = z.infer<typeof purposeSchema>;

const defaultPurposes: Record<string, OutboundPurpose> = {
  reminder: {
    greeting: 'Hello, this is {business} calling with a reminder: {details}. Is there anything you would like to change?',
    voicemail: 'Hello, this is {business} with a reminder: {details}. If you need to change anything, please call us back. Goodbye!',
    instructions: 'You called to remind the person of: {details}. Help them if they want to change or cancel it.',
  },
  confirmation: {
    greeting: 'Hello, this is {business} calling to confirm {details}. Does that still work for you?',
    voicemail: 'Hello, this is {business} calling to confirm {details}. If anything has changed, please call us back. Thank you, goodbye!',
    instructions: 'You called to confirm: {details}. Note whether the person confirms, and help them if they want to change it.',
  },
};

/** Calls this profile places (`POST /api/calls`): what it says for each purpose. */
export const outboundSettingsSchema = z
  .object({
    /** How the assistant names the business on the phone; the profile's `name` when unset. */
    business: z.string().min(1).optional(),
    purposes: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/), purposeSchema).default(defaultPurposes),
  })
  .default({ purposes: defaultPurposes });

export type RecordingSettings = z.infer<typeof recordingSettingsSchema>;
export type TransferSettings = NonNullable<z.infer<typeof transferSettingsSchema>>;
export type OutboundSettings = z.infer<typeof outboundSettingsSchema>;
