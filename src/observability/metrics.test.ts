import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

const valueOf = (body: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1]);

describe('metrics', () => {
  it("reports the event loop's busy time, which grows by the time spent running code", async () => {
    const metrics = new Metrics({ activeCalls: async () => 3 });
    const before = valueOf((await metrics.render()).body, 'callme_event_loop_busy_seconds');
    const start = performance.now();
    while (performance.now() - start < 120) {
      // 120 ms of work on the loop.
    }
    const { body } = await metrics.render();
    const after = valueOf(body, 'callme_event_loop_busy_seconds');
    expect(after - before).toBeGreaterThanOrEqual(0.1);
    expect(valueOf(body, 'callme_active_calls')).toBe(3);
  });
});
