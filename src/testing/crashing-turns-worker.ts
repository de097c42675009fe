import { parentPort } from 'node:worker_threads';
import '../audio/caller-turns-worker.js';
import type { ToTurnThread } from '../audio/threaded-caller-turns.js';

// The real turn thread, which also dies on a one-byte audio frame of 0x00:
// lets tests see what happens to calls when a thread stops.

parentPort?.on('message', (message: ToTurnThread) => {
  if (message.type !== 'audio') return;
  for (let index = 0, offset = 0; index < message.frames.length; offset += message.frames[index + 1], index += 2) {
    if (message.frames[index + 1] === 1 && message.bytes[offset] === 0) process.exit(7);
  }
});
