import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assistant, AssistantTurnInput, TurnPreparation } from '../assistant/assistant.js';
import { loadProfiles } from '../assistant/profile.js';
import { ScriptedAssistant } from '../assistant/scripted-assistant.js';
import { CallRepository, type NewTurn } from '../storage/call-repository.js';
import { openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { CallEngine } from './call-engine.js';
import type { ReplyOutput } from './reply-output.js';
import type { SpeechRenderer } from './speech-renderer.js';
import { TurnProgress } from './turn-progress.js';

// A garbage collection on demand, to see what a finished turn leaves behind.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

let database: TestDatabase;

beforeAll(async () => {
  database = await openTestDatabase('pglite');
});

afterAll(async () => {
  await database.cleanup();
});

async function engine(options: { repository?: CallRepository; llmAssistant?: Assistant } = {}): Promise<CallEngine> {
  return new CallEngine({
    repository: options.repository ?? new CallRepository(database.db),
    llmAssistant: options.llmAssistant,
    profiles: await loadProfiles(path.resolve('profiles'), 'restaurant'),
    scriptedAssistant: new ScriptedAssistant(),
    // The outputs below speak nothing themselves.
    renderer: {} as SpeechRenderer,
    progress: new TurnProgress(),
    settings: { minSpeechConfidence: 0.3, maxSilentPrompts: 3, maxLlmFailures: 2, turnTimeoutMs: 5_000, pipelinedReplies: true },
    logger: pino({ level: 'silent' }),
  });
}

/** An output that listens to the turn's signal and never stops listening, as a media stream's does. */
function listeningOutput(abortSignal: AbortSignal): ReplyOutput {
  const spoken: string[] = [];
  abortSignal.addEventListener('abort', () => spoken.splice(0), { once: true });
  return {
    append: (text) => void spoken.push(text),
    say: (text) => void spoken.push(text),
    flushText: () => {},
    get hasSpoken() {
      return spoken.length > 0;
    },
    finish: async () => ({ spokenText: spoken.join(' '), ttsCharacters: 0 }),
  };
}

describe('CallEngine', () => {
  it('leaves no turn signal in memory once its turn is over, even one still listened to', async () => {
    const calls = await engine();
    const signals: Array<WeakRef<AbortSignal>> = [];
    for (let index = 0; index < 10; index += 1) {
      const callSid = `CA${String(index).padStart(32, '0')}`;
      const { turn } = await calls.runTurn({ callSid, from: '+15550000001', to: '+15550000002' }, 0, undefined, (context) => {
        signals.push(new WeakRef(context.abortSignal));
        return listeningOutput(context.abortSignal);
      });
      expect(turn.status).toBe('completed');
    }
    for (let round = 0; round < 3; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      collectGarbage();
    }
    expect(signals.filter((signal) => signal.deref() !== undefined)).toHaveLength(0);
  });

  it("reads the history with the claim, starts the model's prompt additions alongside it, and hands both to the reply", async () => {
    const events: string[] = [];
    let prepared: AssistantTurnInput['prepared'];
    let history: AssistantTurnInput['history'] = [];
    const llmAssistant: Assistant = {
      mode: 'llm',
      prepare: async (input: TurnPreparation) => {
        events.push(`prepare started: ${input.callerText}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        events.push('prepare done');
        return 'Knowledge: we open at noon.';
      },
      async *respond(input) {
        prepared = input.prepared;
        history = input.history;
        events.push(`respond with ${await input.prepared}`);
        yield { type: 'reply-delta', text: 'We open at noon.' };
      },
    };
    class ObservedRepository extends CallRepository {
      override async claimTurn(turn: NewTurn) {
        events.push('claim started');
        const claimed = await super.claimTurn(turn);
        events.push('claimed');
        return claimed;
      }
      override async listTurns(callId: string) {
        events.push('history read again');
        return super.listTurns(callId);
      }
    }
    const calls = await engine({ repository: new ObservedRepository(database.db), llmAssistant });
    const info = { callSid: 'CA'.padEnd(34, '7'), from: '+15550000001', to: '+15550000002' };
    const greeting = await calls.runTurn(info, 0, undefined, (context) => listeningOutput(context.abortSignal));
    const turnZeroText = greeting.turn.assistant_text;
    expect(turnZeroText).toBeTruthy();
    events.splice(0);
    const { turn } = await calls.runTurn(info, 1, { kind: 'speech', text: 'When do you open?', confidence: 0.9 }, (context) => listeningOutput(context.abortSignal));
    expect(turn.assistant_text).toBe('We open at noon.');
    expect(prepared).toBeInstanceOf(Promise);
    // The prompt additions need the call, not the turn: they start alongside the claim, not after it.
    expect(events.slice(0, 3)).toEqual(['prepare started: When do you open?', 'claim started', 'claimed']);
    // The history came with the claim: no second read before the model is asked.
    expect(events).not.toContain('history read again');
    expect(history).toEqual([{ speaker: 'assistant', text: turnZeroText }]);
    expect(events.at(-1)).toBe('respond with Knowledge: we open at noon.');
  });

  it('stops the prompt additions started for a turn that was claimed before (a retried webhook), and never waits for them', async () => {
    const signals: AbortSignal[] = [];
    const llmAssistant: Assistant = {
      mode: 'llm',
      prepare: async (input: TurnPreparation) => {
        signals.push(input.abortSignal);
        return 'Knowledge: we open at noon.';
      },
      async *respond(input) {
        await input.prepared;
        yield { type: 'reply-delta', text: 'We open at noon.' };
      },
    };
    const calls = await engine({ llmAssistant });
    const info = { callSid: 'CA'.padEnd(34, '6'), from: '+15550000001', to: '+15550000002' };
    await calls.runTurn(info, 0, undefined, (context) => listeningOutput(context.abortSignal));
    const input = { kind: 'speech', text: 'When do you open?', confidence: 0.9 } as const;
    const first = await calls.runTurn(info, 1, input, (context) => listeningOutput(context.abortSignal));
    const again = await calls.runTurn(info, 1, input, (context) => listeningOutput(context.abortSignal));
    expect(again.turn.turn_id).toBe(first.turn.turn_id);
    expect(again.turn.assistant_text).toBe('We open at noon.');
    expect(signals).toHaveLength(2);
    expect(signals[1].aborted).toBe(true);
    expect(String(signals[1].reason)).toContain('claimed before');
  });

  it('stamps a turn received when its request arrives, before the call is looked up', async () => {
    class SlowCallLookup extends CallRepository {
      override async getCall(callId: string) {
        await new Promise((resolve) => setTimeout(resolve, 60));
        return super.getCall(callId);
      }
    }
    const calls = await engine({ repository: new SlowCallLookup(database.db) });
    const info = { callSid: 'CA'.padEnd(34, '9'), from: '+15550000001', to: '+15550000002' };
    const sent = Date.now();
    const { turn } = await calls.runTurn(info, 0, undefined, (context) => listeningOutput(context.abortSignal));
    expect(turn.received_at.getTime() - sent).toBeLessThan(30);
    const claimed = await calls.takeTurn(info, 1, { kind: 'speech', text: 'A table for two', confidence: 0.9 });
    expect(claimed.turn.received_at.getTime()).toBeLessThan(Date.now() - 50);
    await calls.drain();
  });

  it("sends the producing instance's first answer before it is kept, and the same answer to a duplicate; elsewhere, and for a continuation, it waits for the kept one", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    class GatedKeep extends CallRepository {
      override async keepResponse(turnId: number, fromSeq: number, twiml: string) {
        await gate;
        return super.keepResponse(turnId, fromSeq, twiml);
      }
    }
    const repository = new GatedKeep(database.db);
    const producer = await engine({ repository });
    const elsewhere = await engine({ repository });
    const info = { callSid: 'CA'.padEnd(34, '8'), from: '+15550000001', to: '+15550000002' };
    const { turn } = await producer.takeTurn(info, 0, { kind: 'speech', text: 'hello', confidence: 0.9 });

    const settled: string[] = [];
    const note = (label: string) => (twiml: string) => void settled.push(`${label}: ${twiml}`);
    const first = producer.keepAnswer(turn.turn_id, 0, '<Response>first</Response>').then(note('first'));
    const duplicate = producer.keepAnswer(turn.turn_id, 0, '<Response>composed again</Response>').then(note('duplicate'));
    const other = elsewhere.keepAnswer(turn.turn_id, 0, '<Response>other instance</Response>').then(note('other'));
    // A continuation may have reached another instance first: even the producer waits for the kept one.
    const continuation = producer.keepAnswer(turn.turn_id, 1, '<Response>continued</Response>').then(note('continuation'));
    await Promise.all([first, duplicate]);
    // Neither waited for the write; the instance that is not producing the turn does.
    expect(settled).toEqual(['first: <Response>first</Response>', 'duplicate: <Response>first</Response>']);
    expect(await repository.findResponse(turn.turn_id, 0)).toBeUndefined();

    open();
    await Promise.all([other, continuation]);
    expect(settled.slice(2).sort()).toEqual(['continuation: <Response>continued</Response>', 'other: <Response>first</Response>']);
    expect(await repository.findResponse(turn.turn_id, 0)).toBe('<Response>first</Response>');
    expect(await repository.findResponse(turn.turn_id, 1)).toBe('<Response>continued</Response>');
    await producer.drain();
  });
});
