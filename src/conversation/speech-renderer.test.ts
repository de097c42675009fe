import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { refusingAudioStore } from '../audio/audio-store.contract.js';
import { DiskAudioStore } from '../audio/disk-audio-store.js';
import { loadProfiles, type AssistantProfile } from '../assistant/profile.js';
import type { SpeechModel } from '../providers/speech-model.js';
import { CallRepository } from '../storage/call-repository.js';
import { openTestDatabase, type TestDatabase } from '../testing/test-databases.js';
import { SpeechRenderer, type RenderOwner } from './speech-renderer.js';

/** Half a second of 24 kHz PCM in three uneven chunks, as a provider streams it. */
const speechModel: SpeechModel = {
  async synthesize() {
    const pcm = new Uint8Array(24_000);
    for (let i = 0; i < pcm.length; i += 2) pcm[i + 1] = (i / 2) % 40;
    return (async function* () {
      yield pcm.subarray(0, 1001);
      yield pcm.subarray(1001, 9000);
      yield pcm.subarray(9000);
    })();
  },
};

describe('SpeechRenderer, a reply piece', () => {
  let database: TestDatabase;
  let repository: CallRepository;
  let root: string;
  let directory: string;
  let profile: AssistantProfile;
  let owner: RenderOwner;

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    repository = new CallRepository(database.db);
    root = await mkdtemp(path.join(tmpdir(), 'callme-renderer-'));
    directory = path.join(root, 'audio');
    profile = { ...(await loadProfiles(path.resolve('profiles'), 'restaurant')).forNumber(undefined), speech: 'openai' };
    await repository.upsertCall({ callId: 'CA-render', profileId: profile.id, language: profile.language, status: 'in-progress' });
    const { turn } = await repository.claimTurn({ callId: 'CA-render', seq: 1, kind: 'speech', userText: 'hi', assistantMode: 'llm', receivedAt: new Date() });
    owner = { callId: 'CA-render', turnId: turn.turn_id };
  });

  afterAll(async () => {
    await database?.cleanup();
    await rm(root, { recursive: true, force: true });
  });

  it('stores the file and its row, the row describing the file', async () => {
    const store = new DiskAudioStore(directory);
    const renderer = new SpeechRenderer({ speechModel, audioStore: store, repository });
    const rendered = await renderer.renderReply('A table for two.', profile, owner);
    expect(rendered.kind).toBe('audio');
    if (rendered.kind !== 'audio') return;
    const row = await repository.getAudioByFilename(rendered.filename);
    const file = await store.get(rendered.filename);
    file?.body.resume();
    expect(row).toMatchObject({ audio_id: rendered.audioId, call_id: 'CA-render', turn_id: owner.turnId, content_type: 'audio/wav', duration_ms: 500 });
    expect(row?.size_bytes).toBe(file?.info.sizeBytes);
    expect(row?.size_bytes).toBe(58 + 4000); // a μ-law WAV header (it has a fact chunk), then 0.5 s at 8 kHz
  });

  it('marks the row deleted when the file could not be written', async () => {
    const insert = vi.spyOn(repository, 'insertAudioFile');
    const renderer = new SpeechRenderer({ speechModel, audioStore: refusingAudioStore('disk full'), repository });
    await expect(renderer.renderReply('Sorry, that time is taken.', profile, owner)).rejects.toThrow('disk full');
    const row = await insert.mock.results[0].value;
    expect((await repository.getAudioByFilename(row.filename))?.deleted_at).toBeInstanceOf(Date);
    insert.mockRestore();
  });

  it('removes the file when its row could not be stored', async () => {
    const store = new DiskAudioStore(path.join(root, 'other'));
    const insert = vi.spyOn(repository, 'insertAudioFile').mockRejectedValueOnce(new Error('database unreachable'));
    const renderer = new SpeechRenderer({ speechModel, audioStore: store, repository });
    await expect(renderer.renderReply('See you on Friday.', profile, owner)).rejects.toThrow('database unreachable');
    expect(await readdir(path.join(root, 'other'))).toEqual([]);
    insert.mockRestore();
  });
});
