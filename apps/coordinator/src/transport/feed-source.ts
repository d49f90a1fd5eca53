/**
 * Where the route feed and the event feed get committed changes from: the store's own commits on
 * the coordinator that writes them (the leader, or the only one), or what a follower reads back from
 * the shared store after the leader committed it. Both deliver in commit order, each change once.
 */
import type { EventRecord, RouteChange } from '../domain/model.js';
import type { Store } from '../store/contract.js';

/** Committed route changes and events, as one commit (or one follower read) delivers them. */
export interface FedChanges {
  routeChanges: readonly RouteChange[];
  events: readonly EventRecord[];
}

/** Subscribes to committed changes; returns the unsubscribe. */
export type FeedSource = (listener: (changes: FedChanges) => void) => () => void;

/** The store's own commits. */
export function commitsOf(store: Store): FeedSource {
  return (listener) => store.subscribe(listener);
}
