/**
 * GET /v1/events/stream: the event log as server-sent events, for the dashboard. The same token
 * rule (WatchEvents) and tenant filtering as the REST event list and gRPC WatchEvents, fed by the
 * same EventFeed. `?tenant=`, `?host=` narrow it; `?after=<id>` (or a Last-Event-ID header) first
 * replays what was committed after that id, so a client that reconnects misses nothing. Every
 * message is `id: <event id>`, `event: event`, `data: <event JSON>`; a first `event: ready` says
 * the subscription is in place (events committed from then on will arrive).
 */
import type http from 'node:http';
import type { EventFeed } from './event-feed.js';
import { eventJson } from './mappers/rest-fleet-mapper.js';
import type { EventRecord } from '../domain/model.js';
import type { RestCaller } from '../security/rest-auth.js';
import type { Store } from '../store/contract.js';

/** Path of the stream. */
export const EVENT_STREAM_PATH = '/v1/events/stream';

/** A client this far behind (bytes not yet flushed) is cut off; it reconnects with its last id. */
const MAX_BUFFERED = 1 << 20;
/** A comment this often keeps proxies and idle timers from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
const PAGE = 1000;

function afterIdOf(req: http.IncomingMessage, url: URL): number {
  const raw =
    url.searchParams.get('after') ?? (Array.isArray(req.headers['last-event-id']) ? req.headers['last-event-id'][0] : req.headers['last-event-id']) ?? '';
  const n = Number(raw);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** Serves one authorized stream until the client goes away (or falls too far behind). */
export async function serveEventStream(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  caller: RestCaller,
  d: { feed: EventFeed; store: Store },
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const tenantId = url.searchParams.get('tenant') ?? '';
  const hostId = url.searchParams.get('host') ?? '';
  const visible = caller.tenantFilter;
  const maySee = (e: EventRecord): boolean => !visible || visible.has(e.tenantId);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });

  let lastId = 0;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    stop();
    clearInterval(keepalive);
    res.end();
  };
  const send = (e: EventRecord): void => {
    if (closed || e.id <= lastId) return;
    lastId = e.id;
    res.write(`id: ${e.id}\nevent: event\ndata: ${JSON.stringify(eventJson(e))}\n\n`);
    if (res.writableLength > MAX_BUFFERED) close();
  };
  // Subscribe before the replay so nothing committed in between is lost; live events wait until
  // the replay is written, and anything the replay already sent is skipped by id.
  let pending: EventRecord[] | undefined = [];
  const stop = d.feed.watch({ tenantId, hostId }, (e) => {
    if (!maySee(e)) return;
    if (pending) pending.push(e);
    else send(e);
  });
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  req.on('close', close);
  res.on('error', close);

  const after = afterIdOf(req, url);
  if (after > 0) {
    for (;;) {
      const page = await d.store.read.events.list({
        tenantId: tenantId || undefined,
        hostId: hostId || undefined,
        afterId: Math.max(after, lastId),
        limit: PAGE,
      });
      for (const e of page) if (maySee(e)) send(e);
      if (page.length > 0) lastId = Math.max(lastId, page[page.length - 1]!.id);
      if (page.length < PAGE || closed) break;
    }
  }
  res.write(`event: ready\ndata: ${JSON.stringify({ after: Math.max(after, lastId) })}\n\n`);
  const queued = pending;
  pending = undefined;
  for (const e of queued) send(e);
}
