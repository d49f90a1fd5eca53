/**
 * How a follower coordinator learns that the leader committed something: LISTEN/NOTIFY as a
 * wake-up only, the revision columns as the truth. A notification carries nothing a reader relies
 * on; on each one (and after every (re)connect, since notifications sent while the listening
 * connection was down are lost, and every `safetyPollMs` in case one was missed for any other
 * reason) the reader reads everything after the last revision it delivered. So a lost
 * notification delays a change by at most one poll and never loses it.
 */
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';

/** The channel the commit triggers notify on. */
export const CHANGES_CHANNEL = 'pgs_changes';

/**
 * Triggers that notify on every commit that appended route changes or events. Statement-level and
 * delivered at commit (PostgreSQL sends notifications only when the transaction commits, and
 * folds identical ones of one transaction into one), so a rolled-back write wakes nobody.
 */
export function notifyTriggersSql(tables: readonly string[]): string {
  return [
    `CREATE FUNCTION pgs_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN PERFORM pg_notify('${CHANGES_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$;`,
    ...tables.map((t) => `CREATE TRIGGER ${t}_notify AFTER INSERT ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION pgs_notify_change();`),
  ].join('\n');
}

/** Why a reader was woken. */
export type WakeReason = 'notify' | 'connected' | 'poll';

/** Options of listenForChanges. */
export interface ChangeWakeupOptions {
  /** Opens the dedicated listening connection (again after it broke). */
  connect: () => Promise<pg.Client>;
  onWake: (reason: WakeReason, table: string | undefined) => void;
  log: Logger;
  /** Read anyway this often; also the delay between reconnect attempts. Default 2 s. */
  safetyPollMs?: number;
}

/** A running listener. */
export interface ChangeWakeup {
  /** Whether the listening connection is up now. */
  connected(): boolean;
  stop(): Promise<void>;
}

/** Keeps one LISTEN connection up and calls `onWake` on every notification, reconnect and poll. */
export function listenForChanges(o: ChangeWakeupOptions): ChangeWakeup {
  const pollMs = o.safetyPollMs ?? 2000;
  let client: pg.Client | undefined;
  let stopped = false;
  let connecting: Promise<void> | undefined;

  const drop = (c: pg.Client): void => {
    if (client !== c) return;
    client = undefined;
    c.end().catch(() => undefined);
    if (!stopped) o.log.warn({}, 'change listener connection lost; reconnecting');
  };

  const connect = async (): Promise<void> => {
    try {
      const c = await o.connect();
      if (stopped) {
        await c.end();
        return;
      }
      c.on('notification', (n) => {
        if (n.channel === CHANGES_CHANNEL) o.onWake('notify', n.payload);
      });
      c.on('error', (err) => {
        o.log.warn({ err }, 'change listener connection failed');
        drop(c);
      });
      c.on('end', () => drop(c));
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
      client = c;
      // Whatever was notified while we were not listening is read now.
      o.onWake('connected', undefined);
    } catch (err) {
      o.log.warn({ err }, 'change listener could not connect; retrying');
    }
  };

  const ensure = (): void => {
    if (stopped || client || connecting) return;
    connecting = connect().finally(() => (connecting = undefined));
  };

  const timer = setInterval(() => {
    if (!client) ensure();
    else o.onWake('poll', undefined);
  }, pollMs);
  ensure();

  return {
    connected: () => client !== undefined,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await connecting;
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
