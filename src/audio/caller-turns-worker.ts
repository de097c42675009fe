import { parentPort, workerData } from 'node:worker_threads';
import { RingReader, type RingMessage } from './message-ring.js';
import { TurnMessageKind, type FromTurnThread, type TurnThreadData } from './threaded-caller-turns.js';
import { TurnDetector, type TurnEvent, type TurnTiming } from './turn-detector.js';
import { loadVoiceDetectors, type VoiceDetectorFactory } from './voice-detector-factory.js';

// A worker thread judging the audio of many calls: it loads the voice
// activity model once and keeps one turn detector per call. Audio and
// control messages come through a shared ring, in the order they were
// written; the thread speaks only when something happened (a turn started
// or ended, a burst was ignored), a few times per turn.

/**
 * While calls are live the ring is read every 5 ms: cheaper for the event
 * loop than waking this thread for every batch of frames (a system call each),
 * at the price of up to 5 ms before a frame is judged (barge-in and end of
 * speech are decided over 100s of ms of audio).
 */
const pollMs = 5;
/** With no audio for this long (no calls), the thread sleeps until woken. */
const sleepAfterMs = 1000;

const port = parentPort;
if (!port) throw new Error('caller-turns-worker runs as a worker thread');

const post = (message: FromTurnThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const detectors = new Map<number, TurnDetector>();
const decoder = new TextDecoder();
const ring = new RingReader((workerData as TurnThreadData).ring);
/** Detections not yet answered: the model is released only after them. */
let inFlight = 0;
let allAnswered: (() => void) | undefined;
let stopping = false;

function handle(message: RingMessage, factory: VoiceDetectorFactory): void {
  const id = message.tag;
  switch (message.kind) {
    case TurnMessageKind.audio: {
      const detector = detectors.get(id);
      // Copied: the ring's bytes are reused once this returns, and detection is queued.
      if (detector) judge(id, detector, message.bytes.slice());
      return;
    }
    case TurnMessageKind.open:
      detectors.set(id, new TurnDetector({ vad: factory.create(), ...timing(message) }));
      return;
    case TurnMessageKind.configure:
      detectors.get(id)?.configure(timing(message));
      return;
    case TurnMessageKind.close:
      detectors.delete(id);
      return;
    case TurnMessageKind.stop:
      stopping = true;
      return;
  }
}

function timing(message: RingMessage): Partial<TurnTiming> {
  return JSON.parse(decoder.decode(message.bytes)) as Partial<TurnTiming>;
}

function judge(id: number, detector: TurnDetector, mulaw: Uint8Array): void {
  inFlight++;
  detector.push(mulaw).then(
    (events) => {
      answered();
      if (events.length > 0 && detectors.get(id) === detector) post({ type: 'events', id, events }, transferables(events));
    },
    (error: unknown) => {
      answered();
      post({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) });
    },
  );
}

function answered(): void {
  if (--inFlight === 0) allAnswered?.();
}

/** An utterance's audio moves to the event loop instead of being copied. */
function transferables(events: TurnEvent[]): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const event of events) if (event.type === 'speech-ended') buffers.push(event.audio.buffer as ArrayBuffer);
  return buffers;
}

// Keeps the thread alive while it waits on the ring; nothing is sent this way.
port.on('message', () => {});

// Messages wait in the ring until the model has loaded, then are read in order, as they come.
const factory = await loadVoiceDetectors((error) => {
  post({ type: 'fallback', reason: error instanceof Error ? error.message : String(error) });
});
post({ type: 'ready', detector: factory.kind });
while (!stopping) {
  ring.drain((message) => handle(message, factory));
  if (!stopping) await ring.waitForMessages(pollMs, sleepAfterMs);
}
// Asked to stop: the model goes only once nothing runs in it, then the thread ends on its own.
detectors.clear();
if (inFlight > 0) await new Promise<void>((resolve) => (allAnswered = resolve));
await factory.release();
port.close();
