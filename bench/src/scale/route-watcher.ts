// A route watcher that behaves as a router does on the route feed: WatchRoutes since the revision
// it holds (0 when new: a snapshot), then deltas in revision order; on a lost stream it resumes
// from its revision, with backoff. A "full" watcher keeps the whole route table in memory; the
// others keep only their revision and what the simulator times: when each access value of the
// toggled tenants is first applied, and when each tenant of a lost host is first seen not routable.
import { toBinary } from '@bufbuild/protobuf';
import { RouteFeedService, RouteState, WatchRoutesResponseSchema, type Route, type WatchRoutesResponse } from '@pgs/proto';
import type { Client } from '@pgs/rpc';
import { wallMs, type SnapshotSample } from './ipc.js';

/** A route as a full watcher keeps it. */
interface HeldRoute {
  hostId: string;
  state: RouteState;
  externalAccess: boolean;
  revision: bigint;
}

export class RouteWatcher {
  revision = 0n;
  connected = false;
  reconnects = 0;
  stopped = false;
  readonly snapshots: SnapshotSample[] = [];
  readonly errors: string[] = [];
  /** `tenant|access` -> when first applied (epoch ms). */
  toggles: Record<string, number> = {};
  /** `tenant|access` -> the revision of the batch that brought it. */
  readonly toggleRevisions = new Map<string, bigint>();
  lostHost: string | undefined;
  hostLoss: Record<string, number> = {};
  readonly routes: Map<string, HeldRoute> | undefined;
  /** The parts of a snapshot received so far. */
  private parts: { routes: number; bytes: number; held: WatchRoutesResponse[] } | undefined;
  private stream: { cancel(): void } | undefined;

  constructor(
    private readonly client: Client<typeof RouteFeedService>,
    readonly id: string,
    full: boolean,
    /** Tenants whose access changes are timed. */
    private readonly toggled: (tenantId: string) => boolean,
    /** Keep the revision each timed change came in (the driver's probe, to ask real routers for it). */
    private readonly keepRevisions = false,
  ) {
    this.routes = full ? new Map() : undefined;
  }

  start(): void {
    void (async () => {
      let delay = 100;
      while (!this.stopped) {
        const got = await this.follow();
        if (this.stopped) return;
        this.reconnects += 1;
        delay = got ? 100 : Math.min(delay * 2, 5000);
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
      }
    })();
  }

  stop(): void {
    this.stopped = true;
    this.stream?.cancel();
  }

  private async follow(): Promise<boolean> {
    const asked = wallMs();
    // Parts, as a router asks (a coordinator that predates them sends the table whole).
    this.parts = undefined;
    const stream = this.client.watchRoutes({ sinceRevision: this.revision, routerId: this.id, cancelAddress: '127.0.0.1:1', snapshotInParts: true });
    this.stream = stream;
    let got = false;
    try {
      for await (const res of stream) {
        this.apply(res, asked);
        got = true;
        this.connected = true;
      }
    } catch (err) {
      if (!this.stopped && this.errors.length < 5) this.errors.push((err as Error).message.slice(0, 200));
    } finally {
      this.connected = false;
    }
    return got;
  }

  private apply(res: WatchRoutesResponse, asked: number): void {
    const now = wallMs();
    if (res.snapshot) {
      // Sizes measured here, where a router's start-up pays them: re-encoding a part costs what decoding it did.
      this.parts ??= { routes: 0, bytes: 0, held: [] };
      this.parts.routes += res.upserts.length;
      this.parts.bytes += toBinary(WatchRoutesResponseSchema, res).length;
      if (this.routes) this.parts.held.push(res);
      // Parts with more to follow are held: the table is replaced at the last one, as a router does.
      if (res.snapshotContinues) return;
      const whole = this.parts;
      this.parts = undefined;
      this.snapshots.push({ watcher: this.id, ms: now - asked, routes: whole.routes, bytes: whole.bytes });
      this.routes?.clear();
      for (const part of whole.held) for (const r of part.upserts) this.hold(r);
      this.revision = res.revision;
      return;
    }
    if (res.revision < this.revision) this.errors.push(`revision went back from ${this.revision} to ${res.revision}`);
    this.revision = res.revision;
    for (const r of res.upserts) {
      this.hold(r);
      if (this.toggled(r.tenantId)) {
        const key = `${r.tenantId}|${r.externalAccess}`;
        if (this.toggles[key] === undefined) {
          this.toggles[key] = now;
          if (this.keepRevisions) this.toggleRevisions.set(key, res.revision);
        }
      }
      if (this.lostHost !== undefined && r.hostId === this.lostHost && r.state !== RouteState.ROUTABLE) this.hostLoss[r.tenantId] ??= now;
    }
    for (const id of res.deletedTenantIds) this.routes?.delete(id);
  }

  private hold(r: Route): void {
    this.routes?.set(r.tenantId, { hostId: r.hostId, state: r.state, externalAccess: r.externalAccess, revision: r.revision });
  }
}

/** A snapshot of a million routes is hundreds of MB in one message (a coordinator without parts sends it whole). */
export const MAX_FEED_MESSAGE = 1024 * 1024 * 1024;

/** Tenants t0..t<n-1>: the pool whose access the simulator toggles. */
export function togglePool(n: number): (tenantId: string) => boolean {
  return (id) => id.charCodeAt(0) === 116 && Number(id.slice(1)) < n;
}
