/**
 * What an agent that says Hello needs: its host's full desired set, or only a confirmation that
 * what it holds is still wanted. Sending the full set on every Hello costs the coordinator a new
 * generation (a durable write) and the agent a pass over every instance; after a coordinator
 * restart the whole fleet says Hello at once and that work holds the coordinator's event loop while
 * heartbeats wait unread. A host whose agent applied the last full set sent to it, with no desired
 * set sent after it, and whose set as built now hashes the same, already holds what is wanted.
 *
 * The confirmation is a desired set that is not newer than the agent's: the agent keeps what it
 * holds and counts its specs as confirmed (a primary held back by a lost lease may start).
 */

/** The last full desired set recorded as sent to a host. */
export interface FullSetSent {
  generation: number;
  digest: string;
}

/** What the decision looks at. */
export interface HelloDesiredInput {
  /** The generation of the last desired set the agent applied, as its Hello says (0 = none since it started). */
  appliedGeneration: number;
  /** The host's generation in the store: that of the last desired set sent to it, full or delta. */
  hostGeneration: number;
  /** The last full set recorded as sent to the host; undefined = none recorded. */
  sent: FullSetSent | undefined;
  /** The digest of the host's full desired set as built now. */
  digest: string;
}

/** Send the full set (and why), or confirm what the agent holds. */
export type HelloDesired = { send: 'full'; why: string } | { send: 'confirm' };

/** Whether a Hello needs the full desired set or only a confirmation. */
export function desiredAfterHello(i: HelloDesiredInput): HelloDesired {
  if (i.appliedGeneration <= 0) return { send: 'full', why: 'the agent has applied no desired set since it started' };
  if (i.appliedGeneration !== i.hostGeneration)
    return { send: 'full', why: `the agent applied generation ${i.appliedGeneration}, the host is at ${i.hostGeneration}` };
  if (!i.sent || i.sent.generation !== i.hostGeneration) return { send: 'full', why: 'desired sets went out after the last full set recorded' };
  if (i.digest === '' || i.sent.digest !== i.digest) return { send: 'full', why: 'the desired set changed since it was sent' };
  return { send: 'confirm' };
}
