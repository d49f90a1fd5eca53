import { create, type DescMessage, type DescService } from '@bufbuild/protobuf';
import {
  Client as GrpcClient,
  Metadata,
  status,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { isServiceError, RpcError } from './rpc-error.js';
import { serviceDefinition } from './server.js';
import { streamToIterable, writeWithBackpressure } from './stream-iterable.js';
import type { BidiStream, CallOptions, Client, ResponseStream } from './types.js';

function toMetadata(md: CallOptions['metadata']): Metadata {
  if (md instanceof Metadata) return md;
  const out = new Metadata();
  for (const [k, v] of Object.entries(md ?? {})) out.set(k, v);
  return out;
}

function grpcOptions(options: CallOptions | undefined): GrpcCallOptions {
  return options?.timeoutMs !== undefined ? { deadline: Date.now() + options.timeoutMs } : {};
}

function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (isServiceError(err)) return RpcError.fromServiceError(err as ServiceError);
  return new RpcError(status.UNKNOWN, err instanceof Error ? err.message : String(err), { cause: err });
}

/** Wires an AbortSignal to a call's cancel(); returns an unsubscribe function. */
function linkSignal(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    cancel();
    return () => undefined;
  }
  signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

function responseStream<O extends DescMessage>(
  call: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
  options?: CallOptions,
): ResponseStream<O> {
  let cancelledByUs = false;
  const cancel = (): void => {
    cancelledByUs = true;
    call.cancel();
  };
  const unlink = linkSignal(options?.signal, cancel);
  call.on('close', unlink);
  // A cancel we asked for ends the iteration quietly; any other failure is thrown as RpcError.
  const iterable = streamToIterable<never>(call, (err) => (cancelledByUs ? undefined : toRpcError(err)));
  return { cancel, [Symbol.asyncIterator]: () => iterable[Symbol.asyncIterator]() };
}

/**
 * A typed client for a protobuf-es service over grpc-js. Each method by kind:
 * unary -> Promise, server streaming -> AsyncIterable with cancel(), bidi -> send/end + AsyncIterable.
 */
export function createClient<S extends DescService>(
  service: S,
  address: string,
  credentials: ChannelCredentials,
  channelOptions: ChannelOptions = {},
): Client<S> {
  const grpc = new GrpcClient(address, credentials, channelOptions);
  const definition = serviceDefinition(service);
  const client: Record<string, unknown> = {
    close: () => grpc.close(),
    waitForReady: (timeoutMs: number) =>
      new Promise<void>((resolve, reject) => grpc.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(toRpcError(err)) : resolve()))),
  };
  for (const method of service.methods) {
    const def = definition[method.localName];
    if (!def) continue;
    const { path } = def;
    const serialize = def.requestSerialize;
    const deserialize = def.responseDeserialize;
    switch (method.methodKind) {
      case 'unary':
        client[method.localName] = (request: unknown, options?: CallOptions) =>
          new Promise((resolve, reject) => {
            const call = grpc.makeUnaryRequest(
              path,
              serialize,
              deserialize,
              create(method.input, request as never),
              toMetadata(options?.metadata),
              grpcOptions(options),
              (err, value) => {
                unlink();
                if (err) reject(toRpcError(err));
                else resolve(value);
              },
            );
            const unlink = linkSignal(options?.signal, () => call.cancel());
          });
        break;
      case 'server_streaming':
        client[method.localName] = (request: unknown, options?: CallOptions) =>
          responseStream(
            grpc.makeServerStreamRequest(
              path,
              serialize,
              deserialize,
              create(method.input, request as never),
              toMetadata(options?.metadata),
              grpcOptions(options),
            ),
            options,
          );
        break;
      case 'client_streaming':
        client[method.localName] = async (requests: AsyncIterable<unknown>, options?: CallOptions) =>
          new Promise((resolve, reject) => {
            const call = grpc.makeClientStreamRequest(path, serialize, deserialize, toMetadata(options?.metadata), grpcOptions(options), (err, value) => {
              unlink();
              if (err) reject(toRpcError(err));
              else resolve(value);
            });
            const unlink = linkSignal(options?.signal, () => call.cancel());
            void (async () => {
              try {
                for await (const r of requests) await writeWithBackpressure(call, create(method.input, r as never));
                call.end();
              } catch (err) {
                call.cancel();
                reject(toRpcError(err));
              }
            })();
          });
        break;
      case 'bidi_streaming':
        client[method.localName] = (options?: CallOptions): BidiStream<DescMessage, DescMessage> => {
          const call = grpc.makeBidiStreamRequest(path, serialize, deserialize, toMetadata(options?.metadata), grpcOptions(options));
          const responses = responseStream(call, options);
          return {
            ...responses,
            [Symbol.asyncIterator]: () => responses[Symbol.asyncIterator](),
            send: (message) => writeWithBackpressure(call, create(method.input, message as never)),
            end: () => call.end(),
          };
        };
        break;
    }
  }
  return client as Client<S>;
}
