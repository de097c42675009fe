import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles } from '../assistant/profile.js';
import { ScriptedAssistant } from '../assistant/scripted-assistant.js';
import { CallRepository } from '../storage/call-repository.js';
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

async function engine(): Promise<CallEngine> {
  return new CallEngine({
    repository: new CallRepository(database.db),
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
});
