import { describe, expect, it } from 'vitest';
import { bucketPercentile } from './server-process.js';

describe('bucketPercentile', () => {
  it('reads a percentile of what was observed between two scrapes as the bound of its bucket', () => {
    const before: Array<[number, number]> = [[0.001, 5], [0.002, 5], [0.005, 5], [Number.POSITIVE_INFINITY, 5]];
    // Since then: 98 under 1 ms, 1 between 1 and 2 ms, 1 between 2 and 5 ms.
    const after: Array<[number, number]> = [[0.001, 103], [0.002, 104], [0.005, 105], [Number.POSITIVE_INFINITY, 105]];
    expect(bucketPercentile(before, after, 0.5)).toEqual({ count: 100, upperBound: 0.001 });
    expect(bucketPercentile(before, after, 0.99)).toEqual({ count: 100, upperBound: 0.002 });
    expect(bucketPercentile(before, after, 1)).toEqual({ count: 100, upperBound: 0.005 });
  });

  it('says nothing when nothing was observed', () => {
    const buckets: Array<[number, number]> = [[0.001, 2], [Number.POSITIVE_INFINITY, 2]];
    expect(bucketPercentile(buckets, buckets, 0.99)).toEqual({ count: 0, upperBound: Number.NaN });
    expect(bucketPercentile([], [], 0.99)).toEqual({ count: 0, upperBound: Number.NaN });
  });
});
