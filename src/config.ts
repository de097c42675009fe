import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const emptyToUndefined = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const optionalString = z.preprocess(emptyToUndefined, z.string().trim().optional());
const booleanFlag = (fallback: boolean) =>
  z.preprocess(emptyToUndefined, z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { message: 'expected true or false' })
    .optional()
    .transform((value) => (value === undefined ? fallback : ['true', '1', 'yes', 'on'].includes(value))));
const integer = (fallback: number, min: number, max: number) =>
  z.preprocess(emptyToUndefined, z.coerce.number({ message: 'expected a number' }).int('expected a whole number').min(min).max(max).default(fallback));
const decimal = (fallback: number, min: number, max: number) =>
  z.preprocess(emptyToUndefined, z.coerce.number({ message: 'expected a number' }).min(min).max(max).default(fallback));

/** `delete` (right after the call), `forever`, or a number of days such as `7d` or `7`. */
const retention = z.preprocess(
  emptyToUndefined,
  z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^(delete|forever|\d{1,5}d?)$/, 'expected "delete", "forever" or a number of days such as "7d"')
    .default('7d')
    .transform((value): AudioRetention => {
      if (value === 'delete' || value === 'forever') return { kind: value };
      return { kind: 'days', days: Number.parseInt(value, 10) };
    }),
);

export type AudioRetention = { kind: 'delete' } | { kind: 'forever' } | { kind: 'days'; days: number };

/** `AUDIO_STORE` and, for `s3`, the bucket (`S3_*`); keys left unset fall back to the AWS SDK's usual credential sources. */
export type AudioStoreConfig =
  | { kind: 'disk' }
  | { kind: 's3'; bucket: string; endpoint?: string; region: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle: boolean };

const environmentSchema = z.object({
  PORT: integer(8000, 1, 65535),
  HOST: z.preprocess(emptyToUndefined, z.string().default('0.0.0.0')),
  PUBLIC_URL: z.preprocess(
    emptyToUndefined,
    z
      .url({ protocol: /^https?$/, message: 'expected an http(s) URL such as https://abc123.ngrok.app' })
      .transform((value) => value.replace(/\/+$/, ''))
      .optional(),
  ),
  DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('data')),
  AUDIO_DIR: optionalString,
  DATABASE_URL: z.preprocess(
    emptyToUndefined,
    z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL').optional(),
  ),
  TWILIO_ACCOUNT_SID: z.preprocess(
    emptyToUndefined,
    z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'expected AC followed by 32 hexadecimal characters').optional(),
  ),
  TWILIO_AUTH_TOKEN: optionalString,
  TWILIO_PHONE_NUMBER: z.preprocess(
    emptyToUndefined,
    z.string().regex(/^\+[1-9]\d{6,14}$/, 'expected an E.164 number such as +15551234567').optional(),
  ),
  TWILIO_VALIDATE_SIGNATURE: booleanFlag(true),
  TWILIO_API_BASE_URL: z.preprocess(
    emptyToUndefined,
    z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://127.0.0.1:8200' }).transform((value) => value.replace(/\/+$/, '')).optional(),
  ),
  AUDIO_STORE: z.preprocess(emptyToUndefined, z.enum(['disk', 's3']).default('disk')),
  S3_BUCKET: optionalString,
  S3_ENDPOINT: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).optional()),
  S3_REGION: z.preprocess(emptyToUndefined, z.string().default('us-east-1')),
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  S3_FORCE_PATH_STYLE: booleanFlag(false),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: z.preprocess(
    emptyToUndefined,
    z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://127.0.0.1:11434/v1' }).optional(),
  ),
  OPENAI_CHAT_MODEL: z.preprocess(emptyToUndefined, z.string().default('gpt-4o-mini')),
  OPENAI_EMBEDDING_MODEL: z.preprocess(emptyToUndefined, z.string().trim().default('text-embedding-3-small')),
  OPENAI_TIMEOUT_MS: integer(15000, 500, 120000),
  API_TOKEN: optionalString,
  ASSISTANT_PROFILE: z.preprocess(emptyToUndefined, z.string().default('restaurant')),
  PROFILES_DIR: z.preprocess(emptyToUndefined, z.string().default('profiles')),
  MIN_SPEECH_CONFIDENCE: decimal(0.2, 0, 1),
  MAX_SILENT_PROMPTS: integer(3, 1, 20),
  MAX_LLM_FAILURES: integer(2, 1, 20),
  AUDIO_RETENTION: retention,
  PIPELINED_REPLIES: booleanFlag(true),
  PGLITE_THREAD: booleanFlag(availableParallelism() > 1),
  VAD_THREADS: z.preprocess(
    emptyToUndefined,
    z.union([z.literal('auto'), z.coerce.number({ message: "expected 'auto' or a whole number" }).int('expected a whole number').min(0).max(32)]).default('auto'),
  ),
  HEAP_GROWTH_PERCENT: integer(300, 0, 1000),
  MAX_CALLS_PER_NUMBER_PER_HOUR: integer(20, 1, 100000),
  RATE_LIMIT_PER_MINUTE: integer(120, 0, 1000000),
  TTS_RATE_LIMIT_PER_MINUTE: integer(60, 0, 1000000),
  ADMIN_TOKEN: z.preprocess(emptyToUndefined, z.string().trim().min(16, 'expected at least 16 characters (e.g. `openssl rand -hex 24`)').optional()),
  ADMIN_USERNAME: z.preprocess(emptyToUndefined, z.string().trim().regex(/^[^:\s]{1,64}$/, 'expected 1 to 64 characters without spaces or ":"').optional()),
  ADMIN_PASSWORD: z.preprocess(emptyToUndefined, z.string().min(10, 'expected at least 10 characters').optional()),
  MASK_PHONE_NUMBERS: booleanFlag(false),
  PRICING: optionalString,
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
}).superRefine((env, context) => {
  if (env.AUDIO_STORE === 's3' && env.S3_BUCKET === undefined) {
    context.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'AUDIO_STORE=s3 needs a bucket' });
  }
  // A username without a password (or the reverse) would silently leave the dashboard open to this machine only.
  if ((env.ADMIN_USERNAME === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
    const missing = env.ADMIN_USERNAME === undefined ? 'ADMIN_USERNAME' : 'ADMIN_PASSWORD';
    context.addIssue({ code: 'custom', path: [missing], message: 'ADMIN_USERNAME and ADMIN_PASSWORD are set together' });
  }
});

/** Everything callme reads from its environment, parsed and checked once at start-up. */
export interface Config {
  port: number;
  host: string;
  /** Base URL Twilio reaches this server at, without a trailing slash. */
  publicUrl: string;
  /** True when `PUBLIC_URL` was not set and `publicUrl` is the local default. */
  publicUrlIsDefault: boolean;
  dataDir: string;
  audioDir: string;
  databaseUrl?: string;
  /**
   * `PGLITE_THREAD`: the embedded database runs on a worker thread of its
   * own, off the event loop (the default where there are two or more cores).
   */
  pgliteThread: boolean;
  twilio: {
    accountSid?: string;
    authToken?: string;
    phoneNumber?: string;
    validateSignature: boolean;
    /**
     * `TWILIO_API_BASE_URL`: where REST requests (outbound calls, recording
     * downloads) go instead of https://api.twilio.com; only for a local fake.
     */
    apiBaseUrl?: string;
  };
  /** Where audio is kept: `AUDIO_DIR` on disk, or an S3-compatible bucket. */
  audioStore: AudioStoreConfig;
  openai: {
    apiKey?: string;
    baseUrl?: string;
    chatModel: string;
    timeoutMs: number;
    /** Embeds knowledge chunks and questions; `undefined` (`OPENAI_EMBEDDING_MODEL=none`) searches knowledge by full text. */
    embeddingModel?: string;
  };
  apiToken?: string;
  /**
   * Requests a minute one client address may make (0: no limit): `perMinute`
   * to `/api/*`, `/mvp/*`, `/dashboard/*` and `/metrics`, `ttsPerMinute` to `/tts/stream`.
   */
  rateLimits: { perMinute: number; ttsPerMinute: number };
  assistant: {
    profile: string;
    profilesDir: string;
    minSpeechConfidence: number;
    maxSilentPrompts: number;
    maxLlmFailures: number;
    /**
     * Speak a reply sentence by sentence while the model is still writing (default).
     * `false` is the simple flow: the whole reply, then one synthesis, then the answer.
     */
    pipelinedReplies: boolean;
    /** Calls one caller number may place in an hour; further calls hear a short message and are hung up. */
    maxCallsPerNumberPerHour: number;
  };
  /**
   * `VAD_THREADS`: worker threads that judge media-stream callers' audio for
   * speech; 0 runs it on the event loop. `auto` (the default) is one fewer than
   * the cores, at most 4: the event loop keeps a core for pacing frames.
   */
  voiceActivityThreads: number;
  /**
   * `HEAP_GROWTH_PERCENT`: how far the JavaScript heap may grow past what
   * the last full garbage collection kept before the next one starts (V8's
   * `--heap-growing-percent`); 0 leaves V8's own choice. See `main.ts`.
   */
  heapGrowthPercent: number;
  audioRetention: AudioRetention;
  logLevel: string;
  /** The dashboard and its JSON API (`/dashboard`, `/api`). */
  admin: {
    /** `ADMIN_TOKEN`: signs in to the dashboard and is accepted as `Authorization: Bearer` by the API. */
    token?: string;
    /** `ADMIN_USERNAME` and `ADMIN_PASSWORD`: set together, or neither. */
    username?: string;
    password?: string;
    /** Show callers' numbers as `+1555****567`. */
    maskPhoneNumbers: boolean;
    /** `PRICING`: a JSON price table merged over the built-in one. */
    pricingFile?: string;
  };
}

/** A bad environment: one line per variable that is wrong, naming it and what it expects. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Configuration is not valid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/**
 * Reads `.env` (when present, without overriding variables already set) and
 * parses the environment. This is the only place that reads `process.env`.
 */
export function loadConfig(environment: NodeJS.ProcessEnv = readEnvironment()): Config {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? 'environment');
        const value = environment[name];
        const shown = value === undefined || /TOKEN|KEY|SECRET|PASSWORD/.test(name) ? '' : ` (got ${JSON.stringify(value)})`;
        return `${name}: ${issue.message}${shown}`;
      }),
    );
  }
  const env = parsed.data;
  const publicUrl = env.PUBLIC_URL ?? `http://localhost:${env.PORT}`;
  return {
    port: env.PORT,
    host: env.HOST,
    publicUrl,
    publicUrlIsDefault: env.PUBLIC_URL === undefined,
    dataDir: env.DATA_DIR,
    audioDir: env.AUDIO_DIR ?? path.join(env.DATA_DIR, 'audio'),
    databaseUrl: env.DATABASE_URL,
    pgliteThread: env.PGLITE_THREAD,
    heapGrowthPercent: env.HEAP_GROWTH_PERCENT,
    twilio: {
      accountSid: env.TWILIO_ACCOUNT_SID,
      authToken: env.TWILIO_AUTH_TOKEN,
      phoneNumber: env.TWILIO_PHONE_NUMBER,
      validateSignature: env.TWILIO_VALIDATE_SIGNATURE,
      apiBaseUrl: env.TWILIO_API_BASE_URL,
    },
    audioStore:
      env.AUDIO_STORE === 's3'
        ? {
            kind: 's3',
            bucket: env.S3_BUCKET!,
            endpoint: env.S3_ENDPOINT,
            region: env.S3_REGION,
            accessKeyId: env.S3_ACCESS_KEY_ID,
            secretAccessKey: env.S3_SECRET_ACCESS_KEY,
            forcePathStyle: env.S3_FORCE_PATH_STYLE,
          }
        : { kind: 'disk' },
    openai: {
      apiKey: env.OPENAI_API_KEY,
      baseUrl: env.OPENAI_BASE_URL,
      chatModel: env.OPENAI_CHAT_MODEL,
      timeoutMs: env.OPENAI_TIMEOUT_MS,
      embeddingModel: env.OPENAI_EMBEDDING_MODEL === 'none' ? undefined : env.OPENAI_EMBEDDING_MODEL,
    },
    apiToken: env.API_TOKEN,
    rateLimits: { perMinute: env.RATE_LIMIT_PER_MINUTE, ttsPerMinute: env.TTS_RATE_LIMIT_PER_MINUTE },
    assistant: {
      profile: env.ASSISTANT_PROFILE,
      profilesDir: env.PROFILES_DIR,
      minSpeechConfidence: env.MIN_SPEECH_CONFIDENCE,
      maxSilentPrompts: env.MAX_SILENT_PROMPTS,
      maxLlmFailures: env.MAX_LLM_FAILURES,
      pipelinedReplies: env.PIPELINED_REPLIES,
      maxCallsPerNumberPerHour: env.MAX_CALLS_PER_NUMBER_PER_HOUR,
    },
    voiceActivityThreads: env.VAD_THREADS === 'auto' ? Math.min(4, Math.max(0, availableParallelism() - 1)) : env.VAD_THREADS,
    audioRetention: env.AUDIO_RETENTION,
    logLevel: env.LOG_LEVEL,
    admin: {
      token: env.ADMIN_TOKEN,
      username: env.ADMIN_USERNAME,
      password: env.ADMIN_PASSWORD,
      maskPhoneNumbers: env.MASK_PHONE_NUMBERS,
      pricingFile: env.PRICING,
    },
  };
}

function readEnvironment(): NodeJS.ProcessEnv {
  // process.loadEnvFile (Node 20.12+) keeps variables that are already set.
  if (existsSync('.env') && typeof process.loadEnvFile === 'function') process.loadEnvFile('.env');
  return process.env;
}
