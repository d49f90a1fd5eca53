import { credentials, ServerCredentials } from '@grpc/grpc-js';
import { CoordinatorService } from '@pgs/proto';
import { Code, createClient, RpcError } from '@pgs/rpc';
import { createRegistry } from '@pgs/service-kit';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../domain/errors.js';
import { startServingShell, type ServingShell } from './serving-shell.js';

let shell: ServingShell | undefined;
afterEach(async () => {
  await shell?.stop();
  shell = undefined;
});

describe('serving shell', () => {
  it('maps and logs the error of a call that began in a term and ended after it (a write refused as the lease was lost)', async () => {
    shell = await startServingShell({
      grpcListen: '127.0.0.1:0',
      httpHost: '127.0.0.1',
      httpPort: 0,
      credentials: ServerCredentials.createInsecure(),
      self: 'c1',
      log: pino({ level: 'silent' }),
    });
    let fail: (err: Error) => void = () => undefined;
    const started = new Promise<void>((resolveStarted) => {
      shell?.serve({
        services: new Map([
          [
            CoordinatorService.typeName,
            {
              getTenant: () =>
                new Promise((_resolve, reject) => {
                  fail = reject;
                  resolveStarted();
                }),
            },
          ],
        ]),
        options: {
          mapError: (err) =>
            err instanceof StoreUnavailableError ? new RpcError(Code.UNAVAILABLE, 'the store cannot be written right now; retry') : undefined,
          onCallEnd: (info) => ended.push(info.code),
        },
        registry: createRegistry('coordinator'),
        health: () => ({ ok: true }),
      });
    });
    const ended: number[] = [];
    const client = createClient(CoordinatorService, shell.grpcAddress, credentials.createInsecure());
    const call = client.getTenant({ id: 't1' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    await started;
    // The lease is lost: the term ends while the call is still running, then the call fails.
    shell.serve(undefined);
    fail(new StoreUnavailableError('this coordinator no longer holds the leader lease'));
    const err = await call;
    expect(err instanceof RpcError ? [err.code, err.message] : err).toEqual([Code.UNAVAILABLE, 'the store cannot be written right now; retry']);
    expect(ended).toEqual([Code.UNAVAILABLE]);
    // A call arriving after the term ended is refused towards the leader.
    const later = await client.getTenant({ id: 't1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(later instanceof RpcError ? later.code : later).toBe(Code.UNAVAILABLE);
  });
});
