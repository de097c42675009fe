import type { CallerTurnListener, CallerTurns, CallerTurnStream, VoiceDetectorKind } from './caller-turns.js';
import { TurnDetector, type TurnTiming } from './turn-detector.js';
import type { VoiceDetectorFactory } from './voice-detector-factory.js';

/**
 * Turn detection on the event loop: the model is loaded once, on first use,
 * and every call runs its detector between the other calls' work. Right for
 * a few calls or a single core; `ThreadedCallerTurns` moves it off the loop.
 */
export class LocalCallerTurns implements CallerTurns {
  private factory: Promise<VoiceDetectorFactory> | undefined;

  constructor(private readonly load: () => Promise<VoiceDetectorFactory>) {}

  get detector(): Promise<VoiceDetectorKind> {
    return this.loaded().then((factory) => factory.kind);
  }

  open(timing: Partial<TurnTiming>, listener: CallerTurnListener): CallerTurnStream {
    let detector: TurnDetector | undefined;
    let closed = false;
    let settings = timing;
    const ready = this.loaded().then((factory) => (detector = new TurnDetector({ vad: factory.create(), ...settings })));
    const judge = (mulaw: Uint8Array, on: TurnDetector) =>
      on.push(mulaw).then(
        (events) => {
          if (!closed && events.length > 0) listener.onEvents(events);
        },
        (error: unknown) => {
          if (!closed) listener.onError(error instanceof Error ? error : new Error(String(error)));
        },
      );
    return {
      push: (mulaw) => {
        if (closed) return;
        if (detector) void judge(mulaw, detector);
        // Audio that comes before the model has loaded waits for it, in order.
        else void ready.then((loaded) => judge(mulaw, loaded), (error: unknown) => listener.onError(error as Error));
      },
      configure: (change) => {
        settings = { ...settings, ...change };
        detector?.configure(change);
      },
      close: () => {
        closed = true;
      },
    };
  }

  async close(): Promise<void> {
    const factory = this.factory;
    this.factory = undefined;
    await (await factory?.catch(() => undefined))?.release();
  }

  private loaded(): Promise<VoiceDetectorFactory> {
    this.factory ??= this.load().catch((error: unknown) => {
      this.factory = undefined;
      throw error;
    });
    return this.factory;
  }
}
