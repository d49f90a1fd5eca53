/**
 * A client of a service that several coordinators serve and only their leader answers: it is
 * given every coordinator's address and talks to one at a time. A follower refuses with
 * UNAVAILABLE / NOT_LEADER naming the leader's address, and the client moves there; a coordinator
 * out of reach (UNAVAILABLE without a leader named) makes it try the next address. Unary calls
 * are retried that way within a bounded number of rounds; a stream that fails only records where
 * to go next, and the caller's own reconnect loop opens the next stream there.
 */
import type { DescService } from '@bufbuild/protobuf';
import { status, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { createClient } from './client.js';
import { RpcError } from './rpc-error.js';
import type { Client } from './types.js';

/** The errorCode a follower coordinator refuses with; the leader's address is in details.leader. */
export const NOT_LEADER = 'NOT_LEADER';

/** Options of createLeaderClient. */
export interface LeaderClientOptions {
  /** Rounds over every address a unary call may take before its last error is thrown (default 3). */
  rounds?: number;
  /** Pause between rounds, doubled each round up to 4 times (default 300 ms): a new leader takes a few seconds. */
  roundPauseMs?: number;
}

/**
 * Keepalive pings on every channel to a coordinator. A coordinator cut off by a partition sends no
 * reset: without pings a stream open to it (an agent's stream, a router's route feed, an event
 * watch) would wait for it forever while another coordinator leads. With them the stream fails
 * within ~8 s (a ping 5 s after the last traffic, then the timeout) and the caller's reconnect goes
 * to the next address. Agents need that: their lease (5 s) stops primaries that have replicas while
 * they cannot reach a leader, so every second spent on a vanished coordinator is a second without
 * writes.
 */
export const COORDINATOR_KEEPALIVE: ChannelOptions = {
  'grpc.keepalive_time_ms': 5_000,
  'grpc.keepalive_timeout_ms': 3_000,
  'grpc.keepalive_permit_without_calls': 1,
};

/**
 * The keepalive timeout for clients that can wait (a router serves routes from its cache while its
 * feed is down). The timeout also fires when the answer came but this process did not run to read
 * it: Node runs due timers before it reads sockets, so a process kept off the CPU (a router at a
 * load of 10+ on two cores, a long collection) for longer than 3 s dropped a healthy channel,
 * re-resolved, reconnected, re-subscribed and applied the whole route snapshot again, which is more
 * work at the worst time. 20 s outlasts such stalls as the coordinator's own server timeout (30 s)
 * does; a partition is still noticed within half a minute.
 */
export const PATIENT_KEEPALIVE: ChannelOptions = { 'grpc.keepalive_timeout_ms': 20_000 };

/** Splits a comma-separated address list ("h1:7400,h2:7400"); blanks are dropped. */
export function splitAddresses(list: string): string[] {
  return list
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
}

/**
 * Whether a call ran out of time before it was ever sent: grpc-js was still waiting for a
 * connection ("Waiting for LB pick"), as to a coordinator cut off by a partition, where packets
 * vanish and no refusal comes. Such a call did nothing anywhere, so another address may take it.
 */
export function neverSent(err: unknown): boolean {
  return err instanceof RpcError && err.code === status.DEADLINE_EXCEEDED && /Waiting for LB pick/i.test(err.message);
}

/** Where a failed call says to go: the named leader, the next address, or nowhere (not a routing error). */
export function nextAddress(err: unknown, current: string, addresses: readonly string[]): string | undefined {
  if (neverSent(err)) return addresses[(addresses.indexOf(current) + 1) % addresses.length] ?? current;
  if (!(err instanceof RpcError) || err.code !== status.UNAVAILABLE) return undefined;
  const leader = err.errorCode === NOT_LEADER ? err.details['leader'] : undefined;
  if (leader && leader !== current) return leader;
  const i = addresses.indexOf(current);
  return addresses[(i + 1) % addresses.length] ?? current;
}

/**
 * Whether a call failed because no connection could be made (grpc-js says so only in the message).
 * A channel that failed to connect waits out a reconnect backoff (1 s, growing to two minutes)
 * before it tries again, so a coordinator that was down and is back, now leading, would stay out of
 * reach for seconds; such a channel is replaced by a fresh one instead.
 */
export function isUnreachable(err: unknown): boolean {
  if (neverSent(err)) return true;
  return (
    err instanceof RpcError &&
    err.code === status.UNAVAILABLE &&
    err.errorCode !== NOT_LEADER &&
    /No connection established|ECONNREFUSED|ECONNRESET|Connection dropped|Failed to connect/i.test(err.message)
  );
}

/** A Client<S> over several coordinator addresses that follows the leader (see the file comment). */
export function createLeaderClient<S extends DescService>(
  service: S,
  addresses: readonly string[],
  credentials: ChannelCredentials,
  channelOptions: ChannelOptions = {},
  options: LeaderClientOptions = {},
): Client<S> & { current(): string } {
  if (addresses.length === 0) throw new Error('no coordinator address given');
  const known = [...addresses];
  const clients = new Map<string, Client<S>>();
  let current = known[0] as string;
  const clientFor = (address: string): Client<S> => {
    let c = clients.get(address);
    if (!c) {
      c = createClient(service, address, credentials, { ...COORDINATOR_KEEPALIVE, ...channelOptions });
      clients.set(address, c);
    }
    return c;
  };
  /** Records where to go after `err` on `address`; true when the error was a routing one. */
  const moveOn = (err: unknown, address: string): boolean => {
    if (isUnreachable(err)) {
      clients.get(address)?.close();
      clients.delete(address);
    }
    const next = nextAddress(err, address, known);
    if (next === undefined) return false;
    if (!known.includes(next)) known.push(next);
    if (current === address) current = next;
    return true;
  };
  const rounds = options.rounds ?? 3;
  const pauseMs = options.roundPauseMs ?? 300;

  const leader: Record<string, unknown> = {
    current: () => current,
    close: () => {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
    waitForReady: (timeoutMs: number) => clientFor(current).waitForReady(timeoutMs),
  };
  for (const method of service.methods) {
    const name = method.localName;
    const call = (address: string, args: unknown[]): unknown => (clientFor(address) as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args);
    if (method.methodKind === 'unary' || method.methodKind === 'client_streaming') {
      leader[name] = async (...args: unknown[]) => {
        // A client stream's requests can be read once: it gets one attempt, like any stream.
        const attempts = method.methodKind === 'unary' ? rounds * known.length : 1;
        let last: unknown;
        for (let attempt = 0; attempt < attempts; attempt++) {
          if (attempt > 0 && attempt % known.length === 0)
            await new Promise((r) => setTimeout(r, Math.min(pauseMs * 2 ** (attempt / known.length - 1), 4 * pauseMs)));
          const address = current;
          try {
            return await call(address, args);
          } catch (err) {
            last = err;
            if (!moveOn(err, address)) throw err;
          }
        }
        throw last;
      };
    } else {
      leader[name] = (...args: unknown[]) => {
        const address = current;
        const stream = call(address, args) as AsyncIterable<unknown> & Record<string, unknown>;
        const iterate = stream[Symbol.asyncIterator].bind(stream);
        // The stream is the caller's: it sees every error; we only note where to reconnect.
        return {
          ...stream,
          [Symbol.asyncIterator]: () => {
            const it = iterate();
            return {
              next: async () => {
                try {
                  return await it.next();
                } catch (err) {
                  moveOn(err, address);
                  throw err;
                }
              },
              return: async (value?: unknown) => (it.return ? it.return(value) : { done: true as const, value: undefined }),
            };
          },
        };
      };
    }
  }
  return leader as Client<S> & { current(): string };
}
