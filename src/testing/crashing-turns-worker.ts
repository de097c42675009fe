import { parentPort } from 'node:worker_threads';
import '../audio/caller-turns-worker.js';

// The real turn thread, which also dies on a one-byte audio frame of 0x00:
// lets tests see what happens to calls when a thread stops.

parentPort?.on('message', (message: { type: string; mulaw?: Uint8Array }) => {
  if (message.type === 'audio' && message.mulaw?.length === 1 && message.mulaw[0] === 0) process.exit(7);
});
