import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runCall, type CallEnvironment, type CallPlan, type CallResult } from './stream-call.js';

/**
 * A process of simulated callers, started by the stream bench with `fork`.
 * Hundreds of media streams cost real CPU (a JSON message with base64 audio
 * every 20 ms each way per call), so the callers run apart from the bench's
 * own bookkeeping and, for large levels, split over two processes; each
 * reports its own event-loop delay, because a late caller makes the server's
 * frames look late.
 */

export type CallerRequest = { type: 'run'; environment: CallEnvironment; plans: CallPlan[] };

export type CallerMessage =
  | { type: 'ready' }
  | { type: 'done'; results: CallResult[]; loopDelayMs: { p50: number; p99: number; max: number } };

// 5 ms resolution; the histogram includes it, so it is subtracted below.
const resolutionMs = 5;
const loopDelay = monitorEventLoopDelay({ resolution: resolutionMs });
loopDelay.enable();

process.on('message', (message: CallerRequest) => {
  if (message.type !== 'run') return;
  loopDelay.reset();
  void Promise.all(message.plans.map((plan) => runCall(plan, message.environment))).then((results) => {
    const delay = (value: number) => Math.max(0, value / 1e6 - resolutionMs);
    const reply: CallerMessage = {
      type: 'done',
      results,
      loopDelayMs: { p50: delay(loopDelay.percentile(50)), p99: delay(loopDelay.percentile(99)), max: delay(loopDelay.max) },
    };
    process.send?.(reply);
  });
});

process.on('disconnect', () => process.exit(0));

process.send?.({ type: 'ready' } satisfies CallerMessage);
