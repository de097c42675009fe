import { RingReader } from '../audio/message-ring.js';
import { TurnMessageKind } from '../audio/threaded-caller-turns.js';

// The real turn thread, which also dies on a one-byte audio frame of 0x00:
// lets tests see what happens to calls when a thread stops.

const drain = RingReader.prototype.drain;
RingReader.prototype.drain = function (take) {
  return drain.call(this, (message) => {
    if (message.kind === TurnMessageKind.audio && message.bytes.length === 1 && message.bytes[0] === 0) process.exit(7);
    take(message);
  });
};
await import('../audio/caller-turns-worker.js');
