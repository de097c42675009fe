import type { Logger } from 'pino';
import type { AudioStore } from '../audio/audio-store.js';
import type { AudioRetention } from '../config.js';
import type { CallRepository } from '../storage/call-repository.js';
import type { CallEngine } from './call-engine.js';

const terminalStatuses = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);

export interface StatusUpdate {
  callSid: string;
  status: string;
  sequenceNumber?: number;
  durationSeconds?: number;
  timestamp?: string;
  from?: string;
  to?: string;
  accountSid?: string;
  direction?: string;
  payload: Record<string, string>;
}

/**
 * Applies Twilio's status callbacks. Each callback is recorded once, so a
 * retried one changes nothing; when a call ends its outcome is settled and its
 * audio is kept or removed according to the retention setting.
 */
export class CallStatusRecorder {
  constructor(
    private readonly deps: {
      repository: CallRepository;
      engine: CallEngine;
      audioStore: AudioStore;
      retention: AudioRetention;
      logger: Logger;
    },
  ) {}

  async record(update: StatusUpdate): Promise<{ duplicate: boolean }> {
    const { repository } = this.deps;
    const status = update.status.toLowerCase();
    const call = await repository.getCall(update.callSid);
    if (!call) {
      // A call that never reached a voice webhook (busy, no-answer) still gets its row.
      await this.deps.engine.registerCall({
        callSid: update.callSid,
        from: update.from,
        to: update.to,
        accountSid: update.accountSid,
        direction: update.direction,
        status,
      });
    }
    const fresh = await repository.recordStatusEvent(update.callSid, status, update.sequenceNumber ?? null, update.payload);
    if (!fresh) return { duplicate: true };

    const terminal = terminalStatuses.has(status);
    const sequence = update.sequenceNumber ?? (terminal ? 1_000_000 : 0);
    await repository.applyStatus(
      update.callSid,
      status,
      sequence,
      terminal
        ? { endedAt: parseTimestamp(update.timestamp), durationSeconds: update.durationSeconds ?? null, outcome: await this.outcome(update.callSid, status) }
        : null,
    );
    if (terminal) {
      this.deps.engine.abortCall(update.callSid);
      await this.applyRetention(update.callSid);
    }
    return { duplicate: false };
  }

  /** Deletes the audio of calls whose retention has run out. */
  async sweepExpiredAudio(now = new Date()): Promise<number> {
    const callIds = await this.deps.repository.listExpiredAudioCalls(now);
    for (const callId of callIds) await this.deleteCallAudio(callId, 'expired');
    return callIds.length;
  }

  private async outcome(callSid: string, status: string): Promise<string> {
    if (status !== 'completed') return status === 'failed' ? 'failed' : 'missed';
    const turns = await this.deps.repository.listTurns(callSid);
    const last = turns.at(-1);
    if (last?.action === 'hangup') return 'completed';
    // The assistant's part ended with a hand-off; the call went on with a person.
    if (last?.action === 'transfer') return 'transferred';
    return 'hung-up';
  }

  private async applyRetention(callSid: string): Promise<void> {
    const retention = this.deps.retention;
    if (retention.kind === 'delete') {
      await this.deleteCallAudio(callSid, 'delete');
    } else if (retention.kind === 'days') {
      const expires = new Date(Date.now() + retention.days * 86_400_000);
      await this.deps.repository.markCallAudioRetention(callSid, `keep-${retention.days}-days`, expires, null);
    } else {
      await this.deps.repository.markCallAudioRetention(callSid, 'forever', null, null);
    }
  }

  private async deleteCallAudio(callSid: string, retention: string): Promise<void> {
    const files = await this.deps.repository.listCallAudio(callSid);
    const deleted: string[] = [];
    for (const file of files) {
      try {
        await this.deps.audioStore.delete(file.filename);
        deleted.push(file.audio_id);
      } catch (error) {
        this.deps.logger.warn({ err: error, callSid, filename: file.filename }, 'could not delete call audio');
      }
    }
    await this.deps.repository.markAudioDeleted(deleted);
    if (deleted.length === files.length) {
      await this.deps.repository.markCallAudioRetention(callSid, retention === 'expired' ? null : retention, null, new Date());
    }
  }
}

function parseTimestamp(timestamp: string | undefined): Date {
  const parsed = timestamp ? new Date(timestamp) : new Date();
  return Number.isNaN(parsed.getTime()) ? new Date() : parsed;
}
