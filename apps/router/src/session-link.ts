// A client linked to a server connection the router logged into for it (pool mode none behind
// TLS, authenticated-passthrough.ts; pool mode session uses carried-session.ts): bytes both ways as in
// passthrough.ts (a 'data' handler, pause on backpressure), except that the client's Terminate is
// cut out (the server connection outlives the client) and the client's leaving detaches the
// server instead of closing it. Only message headers of the client's stream are looked at.
import type net from 'node:net';
import { TerminateFilter } from '@pgs/wire-protocol';

/** How a lent session ended. */
export interface LentEnd {
  closedBy: 'client' | 'server';
  /** The server connection is at a message boundary and open: it may be reset and kept. */
  reusable: boolean;
  bytesIn: number;
  bytesOut: number;
}

/** A handle to cut a lent session (shutdown deadline). */
export interface LentSession {
  readonly ended: Promise<LentEnd>;
  destroy(): void;
}

/** How long a client may take to read what is left after the server went away. */
const CLOSE_GRACE_MS = 5000;

/**
 * Links `client` to `server` until either goes. `early` holds client bytes read before the link
 * (sent first). The server socket is left paused and without our listeners.
 */
export function lendSession(client: net.Socket, server: net.Socket, early: Buffer): LentSession {
  const filter = new TerminateFilter();
  let bytesIn = 0;
  let bytesOut = 0;
  let settle: (end: LentEnd) => void = () => undefined;
  const ended = new Promise<LentEnd>((resolve) => (settle = resolve));
  let done = false;

  const resumeClient = (): void => void client.resume();
  const resumeServer = (): void => void server.resume();
  const onClientData = (chunk: Buffer): void => {
    bytesIn += chunk.length;
    const out = filter.filter(chunk);
    if (out.length > 0 && !server.write(out)) {
      client.pause();
      server.once('drain', resumeClient);
    }
  };
  const onServerData = (chunk: Buffer): void => {
    bytesOut += chunk.length;
    if (!client.write(chunk)) {
      server.pause();
      client.once('drain', resumeServer);
    }
  };
  const finish = (closedBy: LentEnd['closedBy']): void => {
    if (done) return;
    done = true;
    client.off('data', onClientData);
    client.off('end', onClientGone);
    client.off('close', onClientGone);
    server.off('data', onServerData);
    server.off('close', onServerGone);
    server.off('drain', resumeClient);
    client.off('drain', resumeServer);
    server.pause();
    // Either way the client's connection ends: a departed client's half-close is answered, and a
    // client whose server went away gets what was already written, then the close.
    if (!client.destroyed) {
      client.end();
      setTimeout(() => client.destroy(), CLOSE_GRACE_MS).unref();
    }
    const reusable = closedBy === 'client' && !server.destroyed && filter.atBoundary && !filter.torn;
    settle({ closedBy, reusable, bytesIn, bytesOut });
  };
  const onClientGone = (): void => finish('client');
  const onServerGone = (): void => finish('server');

  client.on('data', onClientData);
  client.once('end', onClientGone);
  client.once('close', onClientGone);
  server.on('data', onServerData);
  server.once('close', onServerGone);
  if (early.length > 0) onClientData(early);
  client.resume();
  server.resume();
  if (client.destroyed) finish('client');

  return {
    ended,
    destroy: () => {
      client.destroy();
      server.destroy();
    },
  };
}
