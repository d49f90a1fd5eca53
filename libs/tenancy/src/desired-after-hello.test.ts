import { describe, expect, it } from 'vitest';
import { desiredAfterHello, type HelloDesiredInput } from './desired-after-hello.js';

const steady: HelloDesiredInput = { appliedGeneration: 7, hostGeneration: 7, sent: { generation: 7, digest: 'abc' }, digest: 'abc' };

describe('desiredAfterHello', () => {
  it('confirms what the agent holds when it applied the last full set, nothing went out after it and the set hashes the same', () => {
    expect(desiredAfterHello(steady)).toEqual({ send: 'confirm' });
  });

  it('sends the full set to an agent that applied nothing since it started', () => {
    expect(desiredAfterHello({ ...steady, appliedGeneration: 0, hostGeneration: 0, sent: { generation: 0, digest: 'abc' } })).toMatchObject({ send: 'full' });
  });

  it('sends the full set to an agent behind or ahead of the host generation', () => {
    expect(desiredAfterHello({ ...steady, appliedGeneration: 6 })).toMatchObject({ send: 'full', why: expect.stringMatching(/applied generation 6/) });
    expect(desiredAfterHello({ ...steady, appliedGeneration: 8 })).toMatchObject({ send: 'full' });
  });

  it('sends the full set when a delta went out after the last full set (the digest no longer describes what the agent holds)', () => {
    expect(desiredAfterHello({ ...steady, appliedGeneration: 8, hostGeneration: 8 })).toMatchObject({
      send: 'full',
      why: expect.stringMatching(/after the last full set/),
    });
  });

  it('sends the full set when none was recorded as sent', () => {
    expect(desiredAfterHello({ ...steady, sent: undefined })).toMatchObject({ send: 'full' });
  });

  it('sends the full set when the set changed, or when there is no digest to compare', () => {
    expect(desiredAfterHello({ ...steady, digest: 'abd' })).toMatchObject({ send: 'full', why: expect.stringMatching(/changed/) });
    expect(desiredAfterHello({ ...steady, digest: '', sent: { generation: 7, digest: '' } })).toMatchObject({ send: 'full' });
  });
});
