/**
 * The addresses a coordinator on a shared store serves, bound once for the life of the process and
 * handed from term to term: a following term (reads and the watch streams from the store), then a
 * leading one, then a following one again. The gRPC server and the HTTP server never close in
 * between, so clients never meet a refused connection at a take-over (a refused connect puts a
 * gRPC channel into its reconnect backoff, which cost seconds at every leader change when the
 * follower's servers were closed and the leader's bound afresh).
 *
 * Every call goes to the term served at that moment; a method that term does not serve (a write
 * on a follower, an agent's stream, enrollment) and every call while no term is served is answered
 * UNAVAILABLE with errorCode NOT_LEADER and the leader's address in the details
 * (pgs-detail-leader), so clients given every coordinator's address go to the leader.
 */
import { Server, type ServerCredentials } from '@grpc/grpc-js';
import type { DescService } from '@bufbuild/protobuf';
import { AgentControlService, CoordinatorService, EnrollmentService, RouteFeedService } from '@pgs/proto';
import { addService, Code, NOT_LEADER, RpcError, type ServiceImpl, type ServiceOptions } from '@pgs/rpc';
import { createRegistry, startOpsServer, type HealthReport, type Logger, type OpsServer } from '@pgs/service-kit';
import type http from 'node:http';
import type { Registry } from 'prom-client';
import { GRPC_SERVER_OPTIONS } from '../transport/grpc-server-options.js';

/** The services a shell binds, the same for every term. */
export const SHELL_SERVICES: readonly DescService[] = [CoordinatorService, AgentControlService, RouteFeedService, EnrollmentService];

/** Handlers by method name (a part of a service's methods: the rest are refused). */
export type PartialImpl = Readonly<Record<string, (...args: never[]) => unknown>>;

/** What one term serves on the shell's addresses. */
export interface ServedTerm {
  /** By service type name; a service or method missing here is refused NOT_LEADER. */
  services: ReadonlyMap<string, PartialImpl>;
  options: ServiceOptions;
  registry: Registry;
  health: () => HealthReport | Promise<HealthReport>;
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
}

/** A bound shell. */
export interface ServingShell {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  /** Serves `term` from now on (undefined: refuse everything towards the leader). */
  serve(term: ServedTerm | undefined): void;
  /** Whether `term` is the one served now. */
  serving(term: ServedTerm): boolean;
  /** The leader clients are sent to (undefined while none is known). */
  setLeader(address: string | undefined): void;
  leader(): string | undefined;
  stop(): Promise<void>;
}

/** Options of startServingShell. */
export interface ServingShellOptions {
  grpcListen: string;
  httpHost: string;
  httpPort: number;
  credentials: ServerCredentials;
  /** This coordinator's own advertised address (named in /healthz). */
  self: string;
  log: Logger;
}

/** The refusal of a call this coordinator does not serve. */
export function notLeaderError(leader: string | undefined): RpcError {
  return leader
    ? new RpcError(Code.UNAVAILABLE, `this coordinator does not lead; the leader is ${leader}`, { errorCode: NOT_LEADER, details: { leader } })
    : new RpcError(Code.UNAVAILABLE, 'no coordinator leads at the moment (an election is under way); retry in a second', { errorCode: NOT_LEADER });
}

/** Picks the named methods of an implementation (what a follower serves of a service). */
export function pickMethods<S extends DescService>(impl: ServiceImpl<S>, names: readonly string[]): PartialImpl {
  const all = impl as unknown as Record<string, (...args: never[]) => unknown>;
  const picked: Record<string, (...args: never[]) => unknown> = {};
  for (const name of names) {
    const fn = all[name];
    if (typeof fn !== 'function') throw new Error(`no method ${name} to serve`);
    picked[name] = fn.bind(impl);
  }
  return picked;
}

function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

/** Binds the coordinator's gRPC and HTTP addresses; until a term is served, every call is refused towards the leader. */
export async function startServingShell(o: ServingShellOptions): Promise<ServingShell> {
  let leader: string | undefined;
  let term: ServedTerm | undefined;
  // The last term served, kept when it ends: a call that began in it may end after it (a write
  // refused because the lease was lost ends just as the term does), and its error is still mapped
  // and logged the term's way, not answered as a bare "internal error".
  let lastTerm: ServedTerm | undefined;
  const idle = createRegistry('coordinator');
  const server = new Server(GRPC_SERVER_OPTIONS);
  // Options and handlers are looked up per call: the term serving when the call arrives answers it.
  const options: ServiceOptions = {
    mapError: (err, method) => (err instanceof RpcError ? err : (term ?? lastTerm)?.options.mapError?.(err, method)),
    onCallEnd: (info) => (term ?? lastTerm)?.options.onCallEnd?.(info),
  };
  for (const service of SHELL_SERVICES) {
    const impl: Record<string, unknown> = {};
    for (const method of service.methods) {
      impl[method.localName] = (...args: never[]) => {
        const handler = term?.services.get(service.typeName)?.[method.localName];
        if (!handler) throw notLeaderError(leader);
        return handler(...args);
      };
    }
    addService(server, service, impl as ServiceImpl<typeof service>, options);
  }
  const grpcPort = await bind(server, o.grpcListen, o.credentials);
  let ops: OpsServer;
  try {
    ops = await startOpsServer({
      host: o.httpHost,
      port: o.httpPort,
      registry: () => term?.registry ?? idle,
      health: () => term?.health() ?? { ok: true, role: 'follower', self: o.self, leader: leader ?? '' },
      extraRoutes: (req, res) => term?.extraRoutes?.(req, res) ?? false,
    });
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  const host = o.grpcListen.slice(0, o.grpcListen.lastIndexOf(':'));
  o.log.info({ grpc: `${host}:${grpcPort}`, http: ops.address }, 'coordinator addresses bound');
  return {
    grpcAddress: `${host}:${grpcPort}`,
    httpAddress: ops.address,
    serve: (next) => {
      term = next;
      lastTerm = next ?? lastTerm;
    },
    serving: (t) => term === t,
    setLeader: (address) => {
      if (address !== leader) o.log.info({ leader: address }, 'leader known');
      leader = address;
    },
    leader: () => leader,
    stop: async () => {
      term = undefined;
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await ops.close();
    },
  };
}
