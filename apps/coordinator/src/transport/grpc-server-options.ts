/**
 * The options of the coordinator's gRPC server (one coordinator, or the serving shell of several).
 *
 * The server pings each connection every 10 s and drops it when the answer is not read within the
 * keepalive timeout. Node runs due timers before it reads the sockets, so after an event-loop turn
 * longer than the timeout the timer fires before an answer that arrived long ago is read: a
 * coordinator busy for a few seconds (a first start at tens of thousands of tenants builds every
 * host's full desired set) dropped every agent connection with a ping in flight at once, and each
 * reconnect cost another full set. Agents' liveness never depended on these pings (heartbeats and
 * the host TTL decide it, and a crashed agent's connection closes at once), so the timeout is long:
 * it only frees connections of peers that vanished without a close.
 */
export const GRPC_SERVER_OPTIONS = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 30_000,
  'grpc.keepalive_permit_without_calls': 1,
} as const;
