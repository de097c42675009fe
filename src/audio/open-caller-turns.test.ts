import { availableParallelism } from 'node:os';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config.js';
import { LocalCallerTurns } from './local-caller-turns.js';
import { openCallerTurns } from './open-caller-turns.js';
import { ThreadedCallerTurns } from './threaded-caller-turns.js';

describe('VAD_THREADS', () => {
  it('defaults to one fewer than the cores, at most 4, and takes a number or auto', () => {
    const auto = Math.min(4, Math.max(0, availableParallelism() - 1));
    expect(loadConfig({}).voiceActivityThreads).toBe(auto);
    expect(loadConfig({ VAD_THREADS: 'auto' }).voiceActivityThreads).toBe(auto);
    expect(loadConfig({ VAD_THREADS: '0' }).voiceActivityThreads).toBe(0);
    expect(loadConfig({ VAD_THREADS: ' 3 ' }).voiceActivityThreads).toBe(3);
  });

  it('refuses what is not a whole number from 0 to 32, naming the variable', () => {
    for (const value of ['-1', '1.5', 'many', '33']) {
      let error: unknown;
      try {
        loadConfig({ VAD_THREADS: value });
      } catch (caught) {
        error = caught;
      }
      expect(error, value).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(/VAD_THREADS/);
    }
  });

  it('runs detection on threads when there are any, on the event loop at 0', async () => {
    const logger = pino({ level: 'silent' });
    const threaded = openCallerTurns(2, logger);
    const local = openCallerTurns(0, logger);
    expect(threaded).toBeInstanceOf(ThreadedCallerTurns);
    expect(local).toBeInstanceOf(LocalCallerTurns);
    await Promise.all([threaded.close(), local.close()]);
  });
});
