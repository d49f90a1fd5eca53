/**
 * What a coordinator that does not lead serves on its addresses: every gRPC call (operator, agent,
 * route feed, enrollment) is answered UNAVAILABLE with errorCode NOT_LEADER and the leader's
 * address in the details (pgs-detail-leader), so agents, routers and pgsctl given every
 * coordinator's address go to the leader; /healthz says it follows and whom. It serves TLS with
 * the fleet CA the leader keeps in the store (it waits for the first leader to create it: a
 * follower never writes).
 */
import { Server } from '@grpc/grpc-js';
import type { DescService } from '@bufbuild/protobuf';
import { AgentControlService, CoordinatorService, EnrollmentService, RouteFeedService } from '@pgs/proto';
import { addService, Code, NOT_LEADER, RpcError, type ServiceImpl } from '@pgs/rpc';
import { createRegistry, startOpsServer, type Logger, type OpsServer } from '@pgs/service-kit';
import type { ServerCredentials } from '@grpc/grpc-js';

/** A running follower server. */
export interface FollowerServer {
  /** The leader clients are sent to (undefined while none is known). */
  setLeader(address: string | undefined): void;
  stop(): Promise<void>;
}

/** Options of startFollowerServer. */
export interface FollowerServerOptions {
  grpcListen: string;
  httpHost: string;
  httpPort: number;
  credentials: ServerCredentials;
  /** This coordinator's own advertised address (named in /healthz). */
  self: string;
  log: Logger;
}

/** The refusal every call gets. */
export function notLeaderError(leader: string | undefined): RpcError {
  return leader
    ? new RpcError(Code.UNAVAILABLE, `this coordinator does not lead; the leader is ${leader}`, { errorCode: NOT_LEADER, details: { leader } })
    : new RpcError(Code.UNAVAILABLE, 'no coordinator leads at the moment (an election is under way); retry in a second', { errorCode: NOT_LEADER });
}

function refusing<S extends DescService>(service: S, leader: () => string | undefined): ServiceImpl<S> {
  const impl: Record<string, unknown> = {};
  for (const method of service.methods) {
    impl[method.localName] = () => {
      throw notLeaderError(leader());
    };
  }
  return impl as ServiceImpl<S>;
}

function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

/** Binds the coordinator's gRPC and HTTP addresses and refuses every call towards the leader. */
export async function startFollowerServer(o: FollowerServerOptions): Promise<FollowerServer> {
  let leader: string | undefined;
  const current = (): string | undefined => leader;
  const server = new Server();
  for (const service of [CoordinatorService, AgentControlService, RouteFeedService, EnrollmentService] as DescService[]) {
    addService(server, service, refusing(service, current));
  }
  await bind(server, o.grpcListen, o.credentials);
  let ops: OpsServer;
  try {
    ops = await startOpsServer({
      host: o.httpHost,
      port: o.httpPort,
      registry: createRegistry('coordinator'),
      health: () => ({ ok: true, role: 'follower', self: o.self, leader: leader ?? '' }),
    });
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  o.log.info({ grpc: o.grpcListen, http: ops.address }, 'following: calls are sent to the leader');
  return {
    setLeader: (address) => {
      if (address !== leader) o.log.info({ leader: address }, 'leader known');
      leader = address;
    },
    stop: async () => {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await ops.close();
    },
  };
}
