import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simulateCall, type CallerReply, type SimulatedCall } from '../../simulator/twilio-simulator.js';
import type { FakeChatReply, FakeChatRequest, FakeOpenAI } from '../../testing/fake-openai-server.js';
import type { TestApp } from '../../testing/test-app.js';
import type { Queryable } from '../../storage/database.js';

/** The numbers the seeded assistants answer. */
export const seededNumbers = { restaurant: '+14155550100', clinic: '+40312345600' };

/** The shipped profiles, copied to `directory` with the numbers they answer. */
export async function writeSeedProfiles(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  const numbers: Record<string, string[]> = { restaurant: [seededNumbers.restaurant], 'clinica-ro': [seededNumbers.clinic] };
  for (const name of await readdir('profiles')) {
    if (!name.endsWith('.json')) continue;
    const profile = JSON.parse(await readFile(path.join('profiles', name), 'utf8')) as { id: string; phoneNumbers?: string[] };
    profile.phoneNumbers = numbers[profile.id] ?? [];
    await writeFile(path.join(directory, name), JSON.stringify(profile, null, 2));
  }
}

/** A caller who says `lines` in order, then hangs up. */
export function scriptedLines(lines: CallerReply[], beforeEach?: (turn: number) => Promise<void>) {
  const queue = [...lines];
  let turn = 0;
  return async (): Promise<CallerReply> => {
    turn += 1;
    await beforeEach?.(turn);
    return queue.length ? queue.shift()! : null;
  };
}

/**
 * Answers each caller line with its scripted reply, whichever call it comes
 * from, so the sample calls can run at the same time.
 */
export function sampleResponder(replies: Record<string, FakeChatReply>): (request: FakeChatRequest) => FakeChatReply {
  return (request) => {
    const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
    const text = typeof lastUser?.content === 'string' ? lastUser.content : (lastUser?.content ?? []).map((part) => part.text ?? '').join('');
    return replies[text] ?? { text: 'Sure. Is there anything else I can help you with?' };
  };
}

const sampleReplies: Record<string, FakeChatReply> = {
  "Hi, I'd like to book a table for Friday evening": { text: 'Of course! What time would you like, and for how many people?' },
  'Seven o’clock, four people, under the name Anna': {
    text: 'Lovely, Anna: a table for four on Friday at seven. Is there anything else?',
    toolCalls: [{ name: 'save_details', arguments: { name: 'Anna', date: 'Friday', time: '19:00', party_size: 4 } }],
  },
  "No, that's all, thanks. Bye!": {
    text: 'Thank you for calling Bella Vista, see you on Friday. Goodbye!',
    toolCalls: [{ name: 'end_call', arguments: { reason: 'reservation made' } }],
  },
  'Do you have vegan options?': { text: 'Yes! We have vegetarian and gluten-free dishes, and a vegan pizza on request.' },
  'Great, and is there parking?': { text: 'There is free parking right behind the restaurant.' },
  'Bună ziua, aș vrea o programare la cardiologie': { text: 'Sigur. Pe ce nume și pentru ce zi doriți programarea?' },
  'Maria Popescu, marți la ora zece': {
    text: 'Am notat: Maria Popescu, marți la ora zece, la cardiologie. Vă mai pot ajuta cu ceva?',
    toolCalls: [{ name: 'save_details', arguments: { name: 'Maria Popescu', date: 'marți', time: '10:00', specialty: 'cardiologie' } }],
  },
  'Nu, mulțumesc. La revedere!': { text: 'Vă mulțumim că ați sunat. La revedere!', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] },
  'What time do you close tonight?': { error: { status: 500, message: 'upstream overloaded' } },
  'When do you close?': { text: 'We close at half past ten tonight; the last seating is at half past nine.' },
};

export interface SampleCalls {
  reservation: SimulatedCall;
  question: SimulatedCall;
  clinic: SimulatedCall;
  troubled: SimulatedCall;
}

/**
 * Four calls through the real server, the way Twilio would place them: a
 * reservation, a question the caller hangs up after, a Romanian clinic
 * appointment, and one with unclear speech and a model failure.
 */
export async function placeSampleCalls(server: TestApp, openai: FakeOpenAI): Promise<SampleCalls> {
  openai.setRespond(sampleResponder(sampleReplies));
  const call = (from: string, to: string, lines: CallerReply[]) =>
    simulateCall({ baseUrl: server.baseUrl, publicUrl: server.publicUrl, authToken: server.authToken, from, to, caller: scriptedLines(lines) });
  const [reservation, question, clinic] = await Promise.all([
    call('+14155550132', seededNumbers.restaurant, ["Hi, I'd like to book a table for Friday evening", 'Seven o’clock, four people, under the name Anna', "No, that's all, thanks. Bye!"]),
    call('+12125550178', seededNumbers.restaurant, ['Do you have vegan options?', 'Great, and is there parking?']),
    call('+40721555019', seededNumbers.clinic, ['Bună ziua, aș vrea o programare la cardiologie', 'Maria Popescu, marți la ora zece', 'Nu, mulțumesc. La revedere!']),
  ]);
  // Last, so that it is the newest call of the list.
  const troubled = await call('+13055550199', seededNumbers.restaurant, [
    { speech: 'uh… table… maybe', confidence: 0.12 },
    'What time do you close tonight?',
    'When do you close?',
  ]);
  openai.setRespond(undefined);
  return { reservation, question, clinic, troubled };
}

/** A small deterministic random source, so seeded screenshots come out the same every time. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const callerLines = [
  ['Hi, can I book a table for tonight?', 'Of course! For how many people, and at what time?'],
  ['Two people at eight, please', 'Perfect, two at eight tonight. What name should I put it under?'],
  ['Do you have gluten-free pasta?', 'Yes, all our pasta dishes can be made gluten-free.'],
  ['Are you open on Mondays?', 'We are closed on Mondays, but open Tuesday to Sunday from noon.'],
  ['Is there parking nearby?', 'Yes, there is free parking behind the restaurant.'],
  ['Can I bring my dog?', 'Dogs are welcome on the terrace.'],
  ['We are a group of ten', 'We can seat up to twelve; shall I book a table for ten?'],
  ['Under the name Marco', 'Thank you, Marco. Anything else I can do for you?'],
  ['How much is the lobster linguine?', 'The lobster linguine is twenty-six.'],
  ['Aș vrea o programare la dermatologie', 'Sigur, pentru ce zi?'],
];

/**
 * Calls over the `days` days before today, inserted as rows: the history an
 * operator would have after a couple of weeks, with varied outcomes,
 * durations, speech confidence, latency and a few failures.
 */
export async function insertCallHistory(db: Queryable, options: { days: number; seed?: number; now?: Date }): Promise<number> {
  const random = seededRandom(options.seed ?? 7);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const between = (low: number, high: number) => low + (high - low) * random();
  const now = options.now ?? new Date();
  let inserted = 0;
  for (let daysAgo = options.days; daysAgo >= 1; daysAgo -= 1) {
    const calls = 3 + Math.floor(random() * 6) + (daysAgo % 7 === 2 ? 4 : 0);
    // Some days are slower: the p95 line should show it.
    const slowness = 1 + (daysAgo % 5 === 0 ? 0.6 : 0) + between(-0.1, 0.15);
    for (let index = 0; index < calls; index += 1) {
      const startedAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - daysAgo, 8 + Math.floor(random() * 12), Math.floor(random() * 60)));
      const callId = `CA${Buffer.from(Array.from({ length: 16 }, () => Math.floor(random() * 256))).toString('hex')}`;
      const clinic = random() < 0.2;
      const roll = random();
      const status = roll < 0.05 ? 'no-answer' : roll < 0.09 ? 'busy' : roll < 0.12 ? 'failed' : 'completed';
      const outcomeRoll = random();
      const outcome = status !== 'completed' ? (status === 'failed' ? 'failed' : 'missed')
        : outcomeRoll < 0.45 ? 'details-collected' : outcomeRoll < 0.65 ? 'completed' : outcomeRoll < 0.93 ? 'hung-up' : 'no-input';
      const answered = status === 'completed';
      const duration = answered ? Math.round(Math.exp(between(Math.log(22), Math.log(330)))) : 0;
      const details = outcome === 'details-collected' ? (clinic ? { name: 'Ion Ionescu', date: 'joi', time: '11:00', specialty: 'pediatrie' } : { name: pick(['Marco', 'Julia', 'Tom', 'Sara']), date: 'Saturday', time: '20:00', party_size: 2 + Math.floor(random() * 5) }) : {};
      await db.query(
        `INSERT INTO calls (call_id, from_number, to_number, direction, profile_id, language, status, status_sequence, outcome, details, started_at, ended_at, duration_seconds, audio_retention, audio_deleted_at)
         VALUES ($1, $2, $3, 'inbound', $4, $5, $6, 3, $7, $8::jsonb, $9, $10, $11, 'delete', $10)`,
        [
          callId, `+1${pick(['415', '212', '305', '617', '646'])}555${String(Math.floor(random() * 10_000)).padStart(4, '0')}`,
          clinic ? seededNumbers.clinic : seededNumbers.restaurant, clinic ? 'clinica-ro' : 'restaurant', clinic ? 'ro-RO' : 'en-US',
          status, outcome, JSON.stringify(details), startedAt, new Date(startedAt.getTime() + duration * 1000), answered ? duration : null,
        ],
      );
      inserted += 1;
      if (!answered) continue;
      const turns = Math.max(1, Math.min(8, Math.round(duration / 28)));
      for (let seq = 0; seq <= turns; seq += 1) {
        const receivedAt = new Date(startedAt.getTime() + (seq * duration * 1000) / (turns + 1));
        const [userText, assistantText] = pick(callerLines);
        const confidence = seq === 0 ? null : random() < 0.08 ? between(0.1, 0.45) : between(0.62, 0.99);
        const kind = seq === 0 ? 'greeting' : confidence !== null && confidence < 0.2 ? 'unclear' : 'speech';
        const failure = seq > 0 && random() < 0.06 ? pick([['provider_timeout', 'the model did not answer within 15 s'], ['provider_unavailable', 'chat completion failed: 503'], ['tts_failed', 'speech synthesis failed: 500']]) : null;
        const llm = seq === 0 ? 0 : between(280, 650) * slowness * (random() < 0.1 ? 2.2 : 1);
        const firstText = llm + between(60, 220);
        const firstAudio = firstText + between(220, 520) * slowness;
        const complete = firstAudio + between(200, 1600);
        const at = (ms: number) => new Date(receivedAt.getTime() + ms);
        await db.query(
          `INSERT INTO turns (call_id, seq, kind, user_text, confidence, assistant_text, action, status, error_code, error_message, assistant_mode,
                              prompt_tokens, completion_tokens, tts_characters, received_at, llm_first_token_at, first_text_at, first_audio_at, completed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'llm', $11, $12, $13, $14, $15, $16, $17, $18)`,
          [
            callId, seq, kind, seq === 0 ? null : userText, confidence, seq === 0 ? 'Hello, thank you for calling!' : assistantText,
            seq === turns && outcome !== 'hung-up' ? 'hangup' : 'listen', failure && failure[0] !== 'tts_failed' ? 'failed' : 'completed',
            failure?.[0] ?? null, failure?.[1] ?? null, seq === 0 ? 0 : 550 + seq * 190, seq === 0 ? 0 : Math.round(between(14, 60)),
            seq === 0 ? 0 : assistantText.length, receivedAt, seq === 0 ? null : at(llm), at(firstText), at(firstAudio), at(complete),
          ],
        );
      }
    }
  }
  return inserted;
}
