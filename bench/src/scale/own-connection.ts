/**
 * gRPC channel options that give a client a connection of its own, as every real agent and router
 * has. grpc-js shares one connection between all clients of the same target unless each has a
 * subchannel pool of its own: the simulator's thousands of fake hosts (and each 25 route watchers)
 * were on one HTTP/2 connection, whose 64 KiB flow-control window held heartbeats behind other
 * hosts' reports and each watcher's batches behind the others', so hosts flapped and watchers lagged
 * as no real fleet would.
 */
export const OWN_CONNECTION = { 'grpc.use_local_subchannel_pool': 1 } as const;
