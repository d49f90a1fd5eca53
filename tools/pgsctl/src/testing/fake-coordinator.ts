/**
 * A CoordinatorService on 127.0.0.1 (plaintext) that answers only the methods a test gives it;
 * every other method answers UNIMPLEMENTED, as a coordinator without them does. For what the real
 * coordinator cannot do in a unit test yet (backups need hosts, pgBackRest and a repository):
 * scripted answers over a real gRPC connection, the seam being our own API.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { CoordinatorService } from '@pgs/proto';
import { addService, Code, RpcError, type ServiceImpl } from '@pgs/rpc';

/** A running fake: its address, the requests it received by method, and stop. */
export interface FakeCoordinator {
  address: string;
  requests: Record<string, unknown[]>;
  stop(): Promise<void>;
}

/** Starts a fake answering `impl`'s methods. */
export async function startFakeCoordinator(impl: Partial<ServiceImpl<typeof CoordinatorService>>): Promise<FakeCoordinator> {
  const requests: Record<string, unknown[]> = {};
  const given = impl as Record<string, ((req: unknown, ...rest: unknown[]) => Promise<unknown>) | undefined>;
  const handlers: Record<string, (req: unknown, ...rest: unknown[]) => Promise<unknown>> = {};
  for (const method of CoordinatorService.methods) {
    handlers[method.localName] = async (req, ...rest) => {
      (requests[method.localName] ??= []).push(req);
      const handler = given[method.localName];
      if (handler === undefined) throw new RpcError(Code.UNIMPLEMENTED, `${method.name}: not in this coordinator`);
      return handler(req, ...rest);
    };
  }
  const server = new Server();
  addService(server, CoordinatorService, handlers as unknown as ServiceImpl<typeof CoordinatorService>);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
