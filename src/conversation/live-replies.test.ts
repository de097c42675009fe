import { describe, expect, it } from 'vitest';
import type { CallRow, SegmentRow, TurnRow } from '../storage/call-repository.js';
import { LiveReplies } from './live-replies.js';

const segment = (seq: number, text: string, filename: string | null = null): SegmentRow => ({ turn_id: 1, seq, text, audio_id: null, filename, ready_at: new Date() });

describe('LiveReplies', () => {
  it('keeps a turn\'s pieces in spoken order, whatever order they are told in, and a piece told again replaces itself', () => {
    const live = new LiveReplies();
    live.started({ call_id: 'CA1' } as CallRow, { turn_id: 1 } as TurnRow);
    live.segmentStored(segment(0, 'a', 'a.wav'));
    live.segmentStored(segment(2, 'c', 'c.wav'));
    live.segmentStored(segment(1, 'b'));
    live.segmentStored(segment(0, 'a', 'a-stored.wav'), false);
    live.segmentStored(segment(3, 'd'), true);
    const reply = live.get(1)!;
    expect(reply.segments.map((piece) => [piece.seq, piece.filename])).toEqual([[0, 'a-stored.wav'], [1, null], [2, 'c.wav'], [3, null]]);
    expect(reply.lastStored).toBe(true);
  });
});
