// Where a CancelRequest goes: to the backend when this router issued the key, else to the peer
// router whose tag the key carries (learned from the coordinator's route feed). Unknown or
// forged keys are dropped without an answer, as PostgreSQL does.
import net from 'node:net';
import type { Logger } from '@pgs/service-kit';
import { encodeCancelRequest } from '@pgs/wire-protocol';
import { routerTag, tagOfProcessId, workerOfProcessId, type CancelKeys } from './cancel-keys.js';
import { parseHostPort } from './listen-address.js';
import type { RouterPeerEntry } from './route.js';

/** What became of a CancelRequest (the `outcome` label of pgs_router_cancel_requests_total). */
export type CancelOutcome = 'sent_to_backend' | 'forwarded' | 'unknown_key' | 'forged_key' | 'failed' | 'no_server_held';

/** Options of CancelRouter. */
export interface CancelRouterOptions {
  keys: CancelKeys;
  routerId: string;
  /** True when every router shares --cancel-secret, so a foreign key's HMAC can be checked before forwarding. */
  sharedSecret: boolean;
  peers: () => readonly RouterPeerEntry[];
  log: Logger;
  timeoutMs: number;
  onOutcome?: (outcome: CancelOutcome) => void;
  /**
   * With --workers: hands a key another worker process of this router issued to that worker (it
   * answers what became of it). Absent for a single process.
   */
  relayToWorker?: (worker: number, processId: number, secretKey: Buffer) => Promise<CancelOutcome>;
}

/** Sends one CancelRequest to host:port and waits until the other side closes (or the timeout). */
export function sendCancelRequest(host: string, port: number, processId: number, secretKey: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`cancel to ${host}:${port} timed out after ${timeoutMs} ms`)));
    socket.once('connect', () => socket.end(encodeCancelRequest(processId, secretKey)));
    // The server answers nothing and closes: reading to the end is how we know it has the request.
    socket.on('data', () => undefined);
    socket.once('error', reject);
    socket.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}

/** Routes CancelRequests to backends or peer routers. */
export class CancelRouter {
  readonly #o: CancelRouterOptions;
  readonly #tags = new Map<string, number>();

  constructor(options: CancelRouterOptions) {
    this.#o = options;
  }

  /**
   * Handles one CancelRequest. `fromPeer`: it arrived on the cancel listener, forwarded by a
   * peer, so it is never forwarded again (no loops).
   */
  async handle(processId: number, secretKey: Buffer, fromPeer: boolean): Promise<CancelOutcome> {
    const outcome = await this.#route(processId, secretKey, fromPeer);
    this.#o.onOutcome?.(outcome);
    return outcome;
  }

  /**
   * Handles a CancelRequest another worker of this router relayed here (the key names this
   * worker): to the backend or dropped, never forwarded again; counted by the relaying worker.
   */
  handleRelayed(processId: number, secretKey: Buffer): Promise<CancelOutcome> {
    return this.#route(processId, secretKey, true);
  }

  async #route(processId: number, secretKey: Buffer, fromPeer: boolean): Promise<CancelOutcome> {
    const { keys, log, timeoutMs } = this.#o;
    const target = keys.resolve(processId, secretKey);
    if (!target && this.#o.relayToWorker && keys.ownedBySibling(processId)) {
      // Every worker holds the same secret, so junk is dropped here instead of crossing processes.
      if (!keys.authentic(processId, secretKey)) return 'forged_key';
      return this.#o.relayToWorker(workerOfProcessId(processId, keys.workers), processId, secretKey);
    }
    // Transaction pooling: between transactions the client runs nothing a cancel could stop.
    if (target?.idle) return 'no_server_held';
    if (target) {
      try {
        await sendCancelRequest(target.host, target.port, target.processId, target.secretKey, timeoutMs);
        log.info({ tenantId: target.tenantId, backend: `${target.host}:${target.port}` }, 'cancel request sent to backend');
        return 'sent_to_backend';
      } catch (err) {
        log.warn({ tenantId: target.tenantId, err: (err as Error).message }, 'cancel request to backend failed');
        return 'failed';
      }
    }
    if (fromPeer) return 'unknown_key';
    if (this.#o.sharedSecret && !keys.authentic(processId, secretKey)) return 'forged_key';
    const tag = tagOfProcessId(processId);
    const owners = this.#o.peers().filter((p) => p.routerId !== this.#o.routerId && this.#tagOf(p.routerId) === tag);
    if (owners.length === 0) return 'unknown_key';
    // Tags are 11 bits, so two routers may share one; only the real issuer acts on the key.
    const results = await Promise.allSettled(
      owners.map(async (p) => {
        const { host, port } = parseHostPort(p.cancelAddress, `cancel address of router ${p.routerId}`);
        return sendCancelRequest(host, port, processId, secretKey, timeoutMs);
      }),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length === results.length) {
      log.warn({ peers: owners.map((p) => p.routerId), err: String((failed[0] as PromiseRejectedResult).reason) }, 'cancel forward failed');
      return 'failed';
    }
    log.info({ peers: owners.map((p) => p.routerId) }, 'cancel request forwarded');
    return 'forwarded';
  }

  #tagOf(routerId: string): number {
    let tag = this.#tags.get(routerId);
    if (tag === undefined) {
      tag = routerTag(routerId);
      this.#tags.set(routerId, tag);
    }
    return tag;
  }
}
