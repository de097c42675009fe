import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { performance } from 'node:perf_hooks';

/** Seconds buckets for voice latencies: what a caller notices lies between 0.2 s and 5 s. */
const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13];
/** Seconds buckets for the server's own hand-offs, which should take well under a millisecond. */
const handOffBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1];

/** What a finished turn reports. Times are milliseconds after the webhook arrived. */
export interface TurnReport {
  kind: string;
  status: string;
  mode: string;
  llmFirstTokenMs?: number;
  firstTextMs?: number;
  firstAudioMs?: number;
  completeMs: number;
  promptTokens: number;
  completionTokens: number;
  ttsCharacters: number;
  errorCodes: string[];
}

/**
 * Prometheus metrics of one server. Each app has its own registry (no global
 * state), so several servers in one process — as in tests — don't collide.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly turns: Counter<'kind' | 'status' | 'mode'>;
  private readonly stages: Histogram<'stage'>;
  private readonly webhooks: Histogram<'route' | 'status'>;
  private readonly providerErrors: Counter<'code'>;
  private readonly tokens: Counter<'direction'>;
  private readonly ttsCharacters: Counter;
  private readonly speechToFrame: Histogram;

  constructor(options: { activeCalls: () => Promise<number> }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'callme_' });
    this.turns = new Counter({ name: 'callme_turns_total', help: 'Turns taken, by kind, status and assistant mode', labelNames: ['kind', 'status', 'mode'], registers: [this.registry] });
    this.stages = new Histogram({
      name: 'callme_turn_stage_seconds',
      help: 'Time from the webhook arriving to each stage of the reply',
      labelNames: ['stage'],
      buckets: latencyBuckets,
      registers: [this.registry],
    });
    this.webhooks = new Histogram({
      name: 'callme_webhook_seconds',
      help: 'Time to answer a Twilio webhook',
      labelNames: ['route', 'status'],
      buckets: latencyBuckets,
      registers: [this.registry],
    });
    this.providerErrors = new Counter({ name: 'callme_provider_errors_total', help: 'Provider failures during turns, by kind', labelNames: ['code'], registers: [this.registry] });
    this.tokens = new Counter({ name: 'callme_llm_tokens_total', help: 'Model tokens used', labelNames: ['direction'], registers: [this.registry] });
    this.ttsCharacters = new Counter({ name: 'callme_tts_characters_total', help: 'Characters sent to speech synthesis', registers: [this.registry] });
    this.speechToFrame = new Histogram({
      name: 'callme_stream_speech_to_frame_seconds',
      help: "Media streams: from a reply's first synthesized bytes reaching the server to its first audio frame written to the caller's socket (replies whose first frame waited behind audio still playing are not counted)",
      buckets: handOffBuckets,
      registers: [this.registry],
    });
    new Gauge({
      name: 'callme_event_loop_busy_seconds',
      help: 'Time the event loop has spent running code (not waiting) since start: its rate is the loop\'s utilisation, which must stay well below 1 for audio frames to leave on time',
      registers: [this.registry],
      collect() {
        this.set(performance.eventLoopUtilization().active / 1000);
      },
    });
    new Gauge({
      name: 'callme_active_calls',
      help: 'Calls started and not yet ended',
      registers: [this.registry],
      async collect() {
        this.set(await options.activeCalls().catch(() => 0));
      },
    });
  }

  turnFinished(report: TurnReport): void {
    this.turns.inc({ kind: report.kind, status: report.status, mode: report.mode });
    const stage = (name: string, ms: number | undefined) => {
      if (ms !== undefined && ms >= 0) this.stages.observe({ stage: name }, ms / 1000);
    };
    stage('llm_first_token', report.llmFirstTokenMs);
    stage('first_text', report.firstTextMs);
    stage('first_audio', report.firstAudioMs);
    stage('complete', report.completeMs);
    if (report.promptTokens) this.tokens.inc({ direction: 'prompt' }, report.promptTokens);
    if (report.completionTokens) this.tokens.inc({ direction: 'completion' }, report.completionTokens);
    if (report.ttsCharacters) this.ttsCharacters.inc(report.ttsCharacters);
    for (const code of report.errorCodes) this.providerErrors.inc({ code });
  }

  /** A media-stream reply's first frame went out this long (monotonic milliseconds) after its speech's first bytes came in. */
  speechReachedCaller(ms: number): void {
    if (ms >= 0) this.speechToFrame.observe(ms / 1000);
  }

  webhookAnswered(route: string, status: number, seconds: number): void {
    this.webhooks.observe({ route, status: String(status) }, seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
