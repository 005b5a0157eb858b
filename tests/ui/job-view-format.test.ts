// The job view's elapsed/ETA wording and its estimate of the time left (DOM-free parts).
import { describe, expect, it } from 'vitest';
import { estimateRemaining, formatDuration } from '../../src/ui/job-view.ts';

describe('job view timing', () => {
  it('formats durations for a ticking line', () => {
    expect(formatDuration(0)).toBe('0.0 s');
    expect(formatDuration(4.24)).toBe('4.2 s');
    expect(formatDuration(65)).toBe('1 min 05 s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3 h 07 min');
    expect(formatDuration(Number.NaN)).toBe('–');
  });

  it('estimates the time left from the pace since the first step', () => {
    // started at 0; the first step (with text encoding) reported at 3 s; 2 s per step after it
    expect(estimateRemaining({ done: 0, total: 10, now: 1, started: 0, firstStepAt: null, firstDone: 0 })).toBeNull();
    expect(estimateRemaining({ done: 1, total: 10, now: 3, started: 0, firstStepAt: 3, firstDone: 1 })).toBe(27);
    expect(estimateRemaining({ done: 4, total: 10, now: 9, started: 0, firstStepAt: 3, firstDone: 1 })).toBe(12);
    expect(estimateRemaining({ done: 10, total: 10, now: 21, started: 0, firstStepAt: 3, firstDone: 1 })).toBe(0);
  });
});
