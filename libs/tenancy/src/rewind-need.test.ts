import { describe, expect, it } from 'vitest';
import { formerPrimaryNeedsRewind, parseTimelineHistory } from './rewind-need.js';

const history = parseTimelineHistory('1\t0/3000100\tno recovery target specified\n\n2\t0/5000028\tno recovery target specified\n');

describe('parseTimelineHistory', () => {
  it('reads each switch and skips what is not one', () => {
    expect(history).toEqual([
      { parent: 1, switchpoint: 0x3000100n },
      { parent: 2, switchpoint: 0x5000028n },
    ]);
    expect(parseTimelineHistory('garbage\n0\t0/1\tx\n')).toEqual([]);
  });
});

describe('formerPrimaryNeedsRewind', () => {
  const clean = { clusterState: 'shut down', checkpointLsn: '0/30000A0', checkpointTimeline: 1 };

  it('lets a cleanly shut down primary whose last checkpoint the new primary replayed follow as it is', () => {
    expect(formerPrimaryNeedsRewind(clean, history).needed).toBe(false);
    expect(formerPrimaryNeedsRewind({ ...clean, checkpointLsn: '0/4FFFFF0', checkpointTimeline: 2 }, history).needed).toBe(false);
  });

  it('rewinds a primary that crashed or was stopped immediately', () => {
    const r = formerPrimaryNeedsRewind({ ...clean, clusterState: 'in production' }, history);
    expect(r).toEqual({ needed: true, reason: expect.stringContaining('not shut down cleanly') });
  });

  it('rewinds a primary that wrote past the fork', () => {
    expect(formerPrimaryNeedsRewind({ ...clean, checkpointLsn: '0/3000100' }, history).needed).toBe(true);
    expect(formerPrimaryNeedsRewind({ ...clean, checkpointLsn: '0/9000000' }, history).needed).toBe(true);
  });

  it('rewinds when the history says nothing about its timeline or its checkpoint is unreadable', () => {
    expect(formerPrimaryNeedsRewind({ ...clean, checkpointTimeline: 3 }, history).needed).toBe(true);
    expect(formerPrimaryNeedsRewind(clean, []).needed).toBe(true);
    expect(formerPrimaryNeedsRewind({ ...clean, checkpointLsn: '' }, history).needed).toBe(true);
  });
});
