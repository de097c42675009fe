import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('HEAP_GROWTH_PERCENT', () => {
  it('lets the heap grow 300 % past what a full collection kept, unless set', () => {
    expect(loadConfig({}).heapGrowthPercent).toBe(300);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).toBe(0);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '150' }).heapGrowthPercent).toBe(150);
  });

  it('refuses what is not a whole number from 0 to 1000', () => {
    for (const value of ['-1', '1001', '2.5', 'lots']) {
      expect(() => loadConfig({ HEAP_GROWTH_PERCENT: value }), value).toThrow(ConfigError);
    }
  });
});
