import type { Database, Queryable } from './database.js';

/** One step of the schema, applied once, in order of `version`. */
export interface Migration {
  version: number;
  name: string;
  /** Several statements; runs in one transaction with the version's record. */
  sql: string;
}

/** Every migration callme knows, oldest first. Never edit one once released: add the next. */
export const migrations: Migration[] = [
  {
    version: 1,
    name: 'initial-schema',
    sql: `
CREATE TABLE calls (
  call_id            TEXT PRIMARY KEY,            -- Twilio CallSid
  account_sid        TEXT,
  from_number        TEXT,
  to_number          TEXT,
  direction          TEXT,
  profile_id         TEXT NOT NULL,
  language           TEXT NOT NULL,
  status             TEXT NOT NULL,               -- latest Twilio CallStatus
  status_sequence    INTEGER NOT NULL DEFAULT -1, -- highest SequenceNumber applied
  assistant_mode     TEXT NOT NULL DEFAULT 'llm', -- 'llm' | 'scripted'
  llm_failures       INTEGER NOT NULL DEFAULT 0,  -- consecutive failed LLM turns
  silent_prompts     INTEGER NOT NULL DEFAULT 0,  -- consecutive empty/unclear turns
  details            JSONB NOT NULL DEFAULT '{}'::jsonb,
  outcome            TEXT,                        -- details-collected | hung-up | no-input | failed | completed
  started_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  ended_at           TIMESTAMPTZ,
  duration_seconds   INTEGER,
  audio_retention    TEXT,                        -- what was applied at the end: delete | keep-N-days | forever
  audio_expires_at   TIMESTAMPTZ,
  audio_deleted_at   TIMESTAMPTZ,
  updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX calls_started_at_idx ON calls (started_at DESC);

CREATE TABLE call_events (                        -- every status callback, once
  event_id       BIGSERIAL PRIMARY KEY,
  call_id        TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
  status         TEXT NOT NULL,
  sequence_number INTEGER,
  payload        JSONB NOT NULL,
  received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (call_id, status, sequence_number)
);

CREATE TABLE turns (
  turn_id            BIGSERIAL PRIMARY KEY,
  call_id            TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
  seq                INTEGER NOT NULL,            -- 0 = greeting, then 1, 2, ...
  kind               TEXT NOT NULL,               -- greeting | speech | silence | unclear | dtmf
  user_text          TEXT,
  confidence         REAL,
  assistant_text     TEXT,                        -- what the caller heard
  action             TEXT,                        -- listen | hangup | (null while processing)
  status             TEXT NOT NULL DEFAULT 'processing', -- processing | completed | failed
  error_code         TEXT,
  error_message      TEXT,
  tool_calls         JSONB NOT NULL DEFAULT '[]'::jsonb,
  assistant_mode     TEXT,                        -- llm | scripted
  prompt_tokens      INTEGER NOT NULL DEFAULT 0,
  completion_tokens  INTEGER NOT NULL DEFAULT 0,
  tts_characters     INTEGER NOT NULL DEFAULT 0,
  received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),  -- webhook received
  llm_first_token_at TIMESTAMPTZ,
  first_text_at      TIMESTAMPTZ,                 -- first speakable piece of text ready
  first_audio_at     TIMESTAMPTZ,                 -- first piece playable
  completed_at       TIMESTAMPTZ,                 -- reply complete
  UNIQUE (call_id, seq)
);

CREATE TABLE audio_files (
  audio_id      TEXT PRIMARY KEY,                 -- random, unguessable
  filename      TEXT NOT NULL UNIQUE,
  call_id       TEXT REFERENCES calls(call_id) ON DELETE SET NULL, -- null for shared cached phrases
  turn_id       BIGINT REFERENCES turns(turn_id) ON DELETE SET NULL,
  cache_key     TEXT UNIQUE,                      -- sha256 of text+voice+model+speed+format for cached phrases
  text          TEXT NOT NULL,
  voice         TEXT NOT NULL,
  model         TEXT NOT NULL,
  format        TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  size_bytes    INTEGER NOT NULL,
  duration_ms   INTEGER,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  deleted_at    TIMESTAMPTZ
);
CREATE INDEX audio_files_call_id_idx ON audio_files (call_id);

CREATE TABLE reply_segments (                     -- a turn's reply, piece by piece, as it becomes playable
  turn_id       BIGINT NOT NULL REFERENCES turns(turn_id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  text          TEXT NOT NULL,
  audio_id      TEXT REFERENCES audio_files(audio_id) ON DELETE SET NULL,
  ready_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (turn_id, seq)
);
`,
  },
  {
    version: 2,
    name: 'webhook-responses',
    // The TwiML each webhook was answered with, so a retried or duplicated
    // delivery gets exactly the same answer as the first.
    sql: `
CREATE TABLE webhook_responses (
  turn_id     BIGINT NOT NULL REFERENCES turns(turn_id) ON DELETE CASCADE,
  from_seq    INTEGER NOT NULL,
  twiml       TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (turn_id, from_seq)
);
`,
  },
  {
    version: 3,
    name: 'media-streams',
    sql: `
ALTER TABLE calls ADD COLUMN mode TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE turns ADD COLUMN interrupted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE turns ADD COLUMN interrupted_at_ms INTEGER;
ALTER TABLE turns ADD COLUMN speech_ended_at TIMESTAMPTZ;
ALTER TABLE turns ADD COLUMN transcript_final_at TIMESTAMPTZ;
ALTER TABLE turns ADD COLUMN tts_first_byte_at TIMESTAMPTZ;
ALTER TABLE turns ADD COLUMN first_frame_at TIMESTAMPTZ;
ALTER TABLE turns ADD COLUMN mark_echoed_at TIMESTAMPTZ;
-- One-time tokens that admit a call's media stream; only a hash is kept.
CREATE TABLE stream_tokens (
  token_hash  TEXT PRIMARY KEY,
  call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
  expires_at  TIMESTAMPTZ NOT NULL,
  used_at     TIMESTAMPTZ
);
`,
  },
  {
    version: 4,
    name: 'reservations',
    // Bookings made by the phone line, the dashboard or the admin API. Dates
    // and times are the business's own local ones (the profile's time zone),
    // as the caller said them: a table at 19:00 stays at 19:00 whatever the
    // server's clock or a daylight-saving change.
    sql: `
CREATE TABLE reservations (
  reservation_id    BIGSERIAL PRIMARY KEY,
  profile_id        TEXT NOT NULL,
  call_id           TEXT REFERENCES calls(call_id) ON DELETE SET NULL, -- the call that made it
  name              TEXT NOT NULL,
  phone             TEXT,                         -- E.164, the calling number unless another was given
  reservation_date  DATE NOT NULL,
  reservation_time  TIME NOT NULL,
  party_size        INTEGER NOT NULL CHECK (party_size > 0),
  notes             TEXT,
  status            TEXT NOT NULL DEFAULT 'confirmed', -- confirmed | cancelled
  source            TEXT NOT NULL DEFAULT 'phone',     -- phone | dashboard | api: who made or last changed it
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX reservations_day_idx ON reservations (profile_id, reservation_date, reservation_time);
CREATE INDEX reservations_phone_idx ON reservations (phone, reservation_date);
-- A returning caller is recognised by number on every call (and the hourly per-number limit counts by it).
CREATE INDEX calls_from_number_idx ON calls (from_number, started_at DESC);
`,
  },
  {
    version: 5,
    name: 'knowledge-chunks',
    // A profile's Markdown knowledge, cut into chunks. A chunk is identified
    // by the hash of its text, so a restart keeps the embeddings of every
    // chunk whose text did not change. Embeddings are base64 of little-endian
    // float32: no extension needed, the same on PGlite and PostgreSQL, and
    // PGlite moves text some thirty times faster than bytea.
    sql: `
CREATE TABLE knowledge_chunks (
  chunk_id         BIGSERIAL PRIMARY KEY,
  profile_id       TEXT NOT NULL,
  source           TEXT NOT NULL,               -- file name
  position         INTEGER NOT NULL,            -- order within the profile's knowledge
  heading          TEXT NOT NULL,               -- "Menu › Pasta"
  content          TEXT NOT NULL,
  content_hash     TEXT NOT NULL,
  search_config    TEXT NOT NULL,               -- text search configuration of tsv (english, russian, simple…)
  tsv              TSVECTOR NOT NULL,
  embedding        TEXT,                        -- base64 float32
  embedding_model  TEXT,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (profile_id, content_hash)
);
CREATE INDEX knowledge_chunks_tsv_idx ON knowledge_chunks USING GIN (tsv);
`,
  },
  {
    version: 6,
    name: 'recordings-transfers-outbound',
    // Twilio's recordings of calls (our copy of the audio is an audio_files
    // row of the call, so audio retention treats it like the rest), hand-offs
    // to a person, and calls the server places. An outbound call is stored
    // before it is dialled: its random id is in the URL Twilio calls back, and
    // the CallSid is only known once Twilio accepted it.
    sql: `
CREATE TABLE recordings (
  recording_sid     TEXT PRIMARY KEY,             -- Twilio RecordingSid (RE…)
  call_id           TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
  status            TEXT NOT NULL,                -- in-progress | completed | absent | failed (RecordingStatus)
  source            TEXT,                         -- RecordingSource, e.g. StartCallRecordingTwiML
  channels          INTEGER,
  duration_seconds  INTEGER,
  source_url        TEXT,                         -- RecordingUrl: Twilio's copy
  audio_id          TEXT REFERENCES audio_files(audio_id) ON DELETE SET NULL, -- our copy in the audio store
  fetch_error       TEXT,
  started_at        TIMESTAMPTZ,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX recordings_call_id_idx ON recordings (call_id);

CREATE TABLE transfers (
  transfer_id       BIGSERIAL PRIMARY KEY,
  call_id           TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
  turn_id           BIGINT UNIQUE REFERENCES turns(turn_id) ON DELETE SET NULL,
  to_number         TEXT NOT NULL,
  summary           TEXT NOT NULL,                -- what the assistant tells the person taking over
  status            TEXT NOT NULL DEFAULT 'dialing', -- dialing | completed | answered | busy | no-answer | failed | canceled
  dial_call_sid     TEXT,
  dial_duration_seconds INTEGER,
  message           TEXT,                         -- taken when nobody answered
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  ended_at          TIMESTAMPTZ
);
CREATE INDEX transfers_call_id_idx ON transfers (call_id);

CREATE TABLE outbound_calls (
  outbound_id       TEXT PRIMARY KEY,             -- random, unguessable: the answer webhook's path
  call_id           TEXT UNIQUE,                  -- Twilio CallSid once placed
  to_number         TEXT NOT NULL,
  from_number       TEXT NOT NULL,
  profile_id        TEXT NOT NULL,
  purpose           TEXT NOT NULL,
  details           TEXT,
  greeting          TEXT NOT NULL,                -- said when a person answers
  voicemail         TEXT NOT NULL,                -- left on an answering machine
  status            TEXT NOT NULL DEFAULT 'placing', -- placing | placed | failed | human | machine | fax
  answered_by       TEXT,                         -- Twilio's AnsweredBy
  error             TEXT,
  created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
`,
  },
];

/**
 * Key for `pg_advisory_xact_lock`, the same in every callme process, so that
 * several servers starting at once against one PostgreSQL take turns instead
 * of racing to create the same tables. It is "callme" in ASCII.
 */
const MIGRATION_LOCK_KEY = 0x63616c6c6d65;

/**
 * Brings the schema up to date: applies, each in its own transaction, every
 * migration not yet recorded in `schema_migrations`. Safe to run from several
 * processes at once. Returns the versions this call applied (none when the
 * schema was already current).
 */
export async function migrate(db: Database): Promise<number[]> {
  const applied = await db.transaction(async (tx) => {
    // Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still
    // collide in PostgreSQL's catalog.
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT PRIMARY KEY,
        name TEXT,
        applied_at TIMESTAMPTZ DEFAULT now()
      )`,
    );
    return appliedVersions(tx);
  });

  const appliedNow: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(migration.version)) continue;
    const didApply = await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
      // Another process may have applied it while this one waited for the lock.
      if ((await appliedVersions(tx)).has(migration.version)) return false;
      await tx.query(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (didApply) appliedNow.push(migration.version);
  }
  return appliedNow;
}

async function appliedVersions(tx: Queryable): Promise<Set<number>> {
  const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
  return new Set(rows.map((row) => row.version));
}
