/**
 * What a follower coordinator serves its watchers from: the route changes and events the leader
 * committed, read from the store by revision (route_changes.revision, events.id) after the last one
 * delivered, woken by LISTEN/NOTIFY, a (re)connect or a safety poll. Delivered in commit order, each
 * once, whatever wake-ups were lost; the same shape as the leader's commit pipeline publishes, so
 * the route feed and event feed need not know which role their coordinator has.
 */
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import type { EventRecord, RouteChange, RouteRecord } from '../../domain/model.js';
import { listenForChanges, type ChangeWakeup } from './change-wakeup.js';
import { eventFromRow, type Row } from './pg-rows.js';
import { startRevisionTail, type RevisionTail } from './revision-tail.js';

/** What the follower learned in one read. */
export interface FollowedChanges {
  routeChanges: readonly RouteChange[];
  events: readonly EventRecord[];
}

/** Options of startFollowerFeed. */
export interface FollowerFeedOptions {
  /** Opens the dedicated listening connection. */
  connect: () => Promise<pg.Client>;
  /** Runs a read (a pool query). */
  query: (sql: string, params: readonly unknown[]) => Promise<{ rows: Row[] }>;
  /** Start after these (the revision and event id the follower already serves). */
  afterRevision: number;
  afterEventId: number;
  deliver: (changes: FollowedChanges) => void;
  log: Logger;
  safetyPollMs?: number;
  pageSize?: number;
}

/** A running follower feed. */
export interface FollowerFeed {
  /** The last route revision and event id delivered. */
  position(): { revision: number; eventId: number };
  /** Resolves once no read runs or waits. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts following; the first read happens as soon as the listening connection is up. */
export function startFollowerFeed(o: FollowerFeedOptions): FollowerFeed {
  const onError = (err: unknown): void => o.log.warn({ err }, 'follower read failed; reading again at the next wake-up');
  const routes: RevisionTail = startRevisionTail<RouteChange>({
    after: o.afterRevision,
    pageSize: o.pageSize,
    read: async (after, limit) =>
      (await o.query('SELECT revision, tenant_id, route FROM route_changes WHERE revision > $1 ORDER BY revision LIMIT $2', [after, limit])).rows.map((r) => ({
        revision: Number(r.revision),
        tenantId: String(r.tenant_id),
        route: r.route === null ? undefined : (JSON.parse(String(r.route)) as RouteRecord),
      })),
    revisionOf: (c) => c.revision,
    deliver: (routeChanges) => o.deliver({ routeChanges, events: [] }),
    onError,
  });
  const events: RevisionTail = startRevisionTail<EventRecord>({
    after: o.afterEventId,
    pageSize: o.pageSize,
    read: async (after, limit) => (await o.query('SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])).rows.map(eventFromRow),
    revisionOf: (e) => e.id,
    deliver: (list) => o.deliver({ routeChanges: [], events: list }),
    onError,
  });
  const wakeup: ChangeWakeup = listenForChanges({
    connect: o.connect,
    log: o.log,
    safetyPollMs: o.safetyPollMs,
    onWake: (_reason, table) => {
      if (table !== 'events') routes.wake();
      if (table !== 'route_changes') events.wake();
    },
  });
  return {
    position: () => ({ revision: routes.position(), eventId: events.position() }),
    idle: async () => {
      await routes.idle();
      await events.idle();
    },
    stop: async () => {
      await wakeup.stop();
      await routes.idle();
      await events.idle();
    },
  };
}
