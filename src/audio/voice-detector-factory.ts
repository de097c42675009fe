import { EnergyVad } from './energy-vad.js';
import { loadSileroModel, type SileroModel } from './silero-vad.js';
import type { VoiceActivityDetector } from './voice-activity.js';
import type { VoiceDetectorKind } from './caller-turns.js';

/** Makes a fresh detector per call from a model loaded once. */
export interface VoiceDetectorFactory {
  readonly kind: VoiceDetectorKind;
  create(): VoiceActivityDetector;
  release(): Promise<void>;
}

/**
 * Silero when its model loads; otherwise the energy detector, so a call is
 * never refused for want of a model. `onFallback` hears why.
 */
export async function loadVoiceDetectors(onFallback: (error: unknown) => void): Promise<VoiceDetectorFactory> {
  let model: SileroModel;
  try {
    model = await loadSileroModel();
  } catch (error) {
    onFallback(error);
    return { kind: 'energy', create: () => new EnergyVad(), release: async () => {} };
  }
  return { kind: 'silero', create: () => model.createDetector(), release: () => model.release() };
}
