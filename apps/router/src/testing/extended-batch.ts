// Extended-query batches of the test's choosing over a real node-postgres connection (its
// "submittable" interface, as pg-cursor uses it): the messages go out as written, so a test can
// send what node-postgres itself never would (two Parses of one name, a Bind without its Parse).
import type pg from 'pg';

/** One message of a batch. */
export type BatchStep = { parse: string; text: string } | { bind: string } | { execute: true };

/** What came back for a batch (up to its ReadyForQuery, or the first error). */
export interface BatchResult {
  parsed: number;
  rows: unknown[][];
  error?: { code?: string; message: string };
}

interface PgConnection {
  parse(q: { name: string; text: string; types: unknown[] }): void;
  bind(c: { portal: string; statement: string; values: unknown[] }): void;
  execute(c: { portal: string; rows: number }): void;
  sync(): void;
  on(event: 'parseComplete', fn: () => void): void;
  off(event: 'parseComplete', fn: () => void): void;
}

/** Sends `steps` and a Sync on `client`; resolves at the ReadyForQuery or the first ErrorResponse. */
export function extendedBatch(client: pg.Client, steps: BatchStep[]): Promise<BatchResult> {
  const connection = (client as unknown as { connection: PgConnection }).connection;
  return new Promise((resolve) => {
    const result: BatchResult = { parsed: 0, rows: [] };
    const onParsed = (): void => void result.parsed++;
    connection.on('parseComplete', onParsed);
    const settle = (): void => {
      connection.off('parseComplete', onParsed);
      resolve(result);
    };
    const submittable = {
      submit(con: PgConnection): void {
        for (const s of steps) {
          if ('parse' in s) con.parse({ name: s.parse, text: s.text, types: [] });
          else if ('bind' in s) con.bind({ portal: '', statement: s.bind, values: [] });
          else con.execute({ portal: '', rows: 0 });
        }
        con.sync();
      },
      handleRowDescription: (): void => undefined,
      handleDataRow: (msg: { fields: unknown[] }): void => void result.rows.push(msg.fields),
      handleCommandComplete: (): void => undefined,
      handleEmptyQuery: (): void => undefined,
      handlePortalSuspended: (): void => undefined,
      handleError: (err: { code?: string; message: string }): void => {
        result.error = { code: err.code, message: err.message };
        settle();
      },
      handleReadyForQuery: (): void => settle(),
    };
    void client.query(submittable as unknown as pg.QueryConfig);
  });
}
