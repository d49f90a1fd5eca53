import { fromBinary, type DescMessage, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { EncodedMessage, encodeMessage } from './encoded.js';
import {
  Metadata,
  status,
  type sendUnaryData,
  type Server,
  type ServerDuplexStream,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type StatusObject,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { RpcError } from './rpc-error.js';
import { streamToIterable, writeWithBackpressure } from './stream-iterable.js';
import type { CallContext, ServerStream, ServiceImpl } from './types.js';

/** Hooks around every call: error mapping (domain error -> RpcError), auth, metrics, logging. */
export interface ServiceOptions {
  /** Turns a thrown error into an RpcError; return undefined for "internal error". */
  mapError?: (err: unknown, method: string) => RpcError | undefined;
  /** Runs before the handler; throw an RpcError (e.g. UNAUTHENTICATED) to refuse the call. */
  authorize?: (ctx: CallContext) => void | Promise<void>;
  /** Called once per finished call with its outcome (for metrics and logs). */
  onCallEnd?: (info: { method: string; code: status; durationMs: number; error?: unknown }) => void;
}

type AnyCall =
  ServerUnaryCall<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

/** The full gRPC path of a method, e.g. `/pgs.routing.v1.RouteFeedService/WatchRoutes`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serializer(schema: DescMessage) {
  return (value: unknown): Buffer => {
    return value instanceof EncodedMessage ? value.bytes : encodeMessage(schema, value);
  };
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer): unknown => fromBinary(schema, bytes);
}

/** The grpc-js ServiceDefinition of a protobuf-es service descriptor. */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, ServiceDefinition[string]> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
      originalName: method.localName,
    };
  }
  return definition as ServiceDefinition;
}

function toStatus(err: unknown, method: string, options: ServiceOptions): Partial<StatusObject> & { code: status } {
  const mapped = err instanceof RpcError ? err : options.mapError?.(err, method);
  if (mapped) return { code: mapped.code, details: mapped.message, metadata: mapped.toMetadata() };
  // Never leak internals to the caller: the server logs the cause through onCallEnd.
  return { code: status.INTERNAL, details: 'internal error', metadata: new Metadata() };
}

function contextOf(call: AnyCall, method: string): { ctx: CallContext; finish: () => void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  (call as ServerUnaryCall<unknown, unknown>).on('cancelled', abort);
  const ctx: CallContext = {
    method,
    metadata: call.metadata,
    signal: controller.signal,
    peer: call.getPeer(),
    get peerCertificate() {
      return call.getAuthContext?.()?.sslPeerCertificate;
    },
  };
  return { ctx, finish: abort };
}

function serverStream<O extends DescMessage>(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  signal: AbortSignal,
): ServerStream<O> {
  return {
    signal,
    send: (message) => {
      if (signal.aborted) return Promise.reject(new RpcError(status.CANCELLED, 'call cancelled'));
      return writeWithBackpressure(call, message);
    },
  };
}

/** Registers `impl` for `service` on a grpc-js server, with typed handlers and error mapping. */
export function addService<S extends DescService>(server: Server, service: S, impl: ServiceImpl<S>, options: ServiceOptions = {}): void {
  const implementation: UntypedServiceImplementation = {};
  const handlers = impl as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (typeof handler !== 'function') throw new Error(`no handler for ${service.typeName}.${method.name}`);
    const name = `${service.typeName}/${method.name}`;
    const run = async (
      call: AnyCall,
      body: (ctx: CallContext) => Promise<unknown>,
    ): Promise<{ ok: true; value: unknown } | { ok: false; status: ReturnType<typeof toStatus> }> => {
      const started = performance.now();
      const { ctx, finish } = contextOf(call, name);
      try {
        await options.authorize?.(ctx);
        const value = await body(ctx);
        options.onCallEnd?.({ method: name, code: status.OK, durationMs: performance.now() - started });
        return { ok: true, value };
      } catch (err) {
        const st = ctx.signal.aborted && !(err instanceof RpcError) ? { code: status.CANCELLED, details: 'cancelled' } : toStatus(err, name, options);
        options.onCallEnd?.({ method: name, code: st.code, durationMs: performance.now() - started, error: err });
        return { ok: false, status: st };
      } finally {
        finish();
      }
    };
    switch (method.methodKind) {
      case 'unary':
        implementation[method.localName] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          void run(call, (ctx) => handler(call.request, ctx)).then((r) => (r.ok ? callback(null, r.value) : callback(r.status)));
        };
        break;
      case 'server_streaming':
        implementation[method.localName] = (call: ServerWritableStream<unknown, unknown>) => {
          void run(call, (ctx) => handler(call.request, serverStream(call, ctx.signal), ctx)).then((r) => (r.ok ? call.end() : call.emit('error', r.status)));
        };
        break;
      case 'client_streaming':
        implementation[method.localName] = (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          const requests = streamToIterable(call, (e) => (e instanceof Error ? e : new Error(String(e))));
          void run(call, (ctx) => handler(requests, ctx)).then((r) => (r.ok ? callback(null, r.value) : callback(r.status)));
        };
        break;
      case 'bidi_streaming':
        implementation[method.localName] = (call: ServerDuplexStream<unknown, unknown>) => {
          const requests = streamToIterable(call, (e) => (e instanceof Error ? e : new Error(String(e))));
          void run(call, (ctx) => handler(requests, serverStream(call, ctx.signal), ctx)).then((r) => (r.ok ? call.end() : call.emit('error', r.status)));
        };
        break;
    }
  }
  server.addService(serviceDefinition(service), implementation);
}
