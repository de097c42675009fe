import { parentPort } from 'node:worker_threads';
import type { FromTurnThread, ToTurnThread } from './threaded-caller-turns.js';
import { TurnDetector, type TurnEvent } from './turn-detector.js';
import { loadVoiceDetectors, type VoiceDetectorFactory } from './voice-detector-factory.js';

// A worker thread judging the audio of many calls: it loads the voice
// activity model once and keeps one turn detector per call. It only speaks
// when something happened (a turn started or ended, a burst was ignored),
// so the event loop sending it audio hears back a few times per turn.

const port = parentPort;
if (!port) throw new Error('caller-turns-worker runs as a worker thread');

const post = (message: FromTurnThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const detectors = new Map<number, TurnDetector>();
let factory: VoiceDetectorFactory | undefined;

const loading = loadVoiceDetectors((error) => {
  post({ type: 'fallback', reason: error instanceof Error ? error.message : String(error) });
}).then((loaded) => {
  factory = loaded;
  post({ type: 'ready', detector: loaded.kind });
});

function handle(message: ToTurnThread, loaded: VoiceDetectorFactory): void {
  switch (message.type) {
    case 'audio': {
      const { frames, bytes } = message;
      for (let index = 0, offset = 0; index < frames.length; index += 2) {
        const id = frames[index];
        const length = frames[index + 1];
        const detector = detectors.get(id);
        if (detector) judge(id, detector, bytes.subarray(offset, offset + length));
        offset += length;
      }
      return;
    }
    case 'open':
      detectors.set(message.id, new TurnDetector({ vad: loaded.create(), ...message.timing }));
      return;
    case 'configure':
      detectors.get(message.id)?.configure(message.timing);
      return;
    case 'close':
      detectors.delete(message.id);
      return;
  }
}

function judge(id: number, detector: TurnDetector, mulaw: Uint8Array): void {
  detector.push(mulaw).then(
    (events) => {
      if (events.length > 0 && detectors.get(id) === detector) post({ type: 'events', id, events }, transferables(events));
    },
    (error: unknown) => post({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) }),
  );
}

/** An utterance's audio moves to the event loop instead of being copied. */
function transferables(events: TurnEvent[]): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const event of events) if (event.type === 'speech-ended') buffers.push(event.audio.buffer as ArrayBuffer);
  return buffers;
}

port.on('message', (message: ToTurnThread) => {
  // Until the model has loaded, messages wait for it in arrival order.
  if (factory) handle(message, factory);
  else void loading.then(() => handle(message, factory!));
});
