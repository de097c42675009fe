import type { Logger } from 'pino';
import type { CallerTurns } from './caller-turns.js';
import { LocalCallerTurns } from './local-caller-turns.js';
import { ThreadedCallerTurns } from './threaded-caller-turns.js';
import { loadVoiceDetectors } from './voice-detector-factory.js';

/** Turn detection for media-stream calls: on `threads` worker threads, or on the event loop when 0. */
export function openCallerTurns(threads: number, logger: Logger): CallerTurns {
  if (threads > 0) return new ThreadedCallerTurns({ threads, logger });
  return new LocalCallerTurns(() =>
    loadVoiceDetectors((error) => logger.error({ err: error }, 'the Silero voice activity model could not be loaded; using the energy detector')),
  );
}
