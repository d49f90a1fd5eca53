import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { Metadata } from '@grpc/grpc-js';
import type { EncodedMessage } from './encoded.js';

/** What a handler knows about its call. */
export interface CallContext {
  readonly method: string;
  readonly metadata: Metadata;
  /** Aborted when the client cancels, the deadline passes or the server shuts the call. */
  readonly signal: AbortSignal;
  readonly peer: string;
  /** The peer's TLS certificate (mTLS), when there is one. */
  readonly peerCertificate: unknown;
}

/**
 * The server side of a stream of responses. `send` resolves once the message is flushed
 * (backpressure); an `EncodedMessage` goes as its bytes (one message sent on many streams).
 */
export interface ServerStream<O extends DescMessage> {
  send(message: MessageInitShape<O> | EncodedMessage<O>): Promise<void>;
  readonly signal: AbortSignal;
}

type Method = Pick<DescMethod, 'input' | 'output' | 'methodKind'>;

/** A handler for one method, by kind. Throw RpcError (or an error the service's mapper knows) to fail the call. */
export type Handler<M extends Method> = M['methodKind'] extends 'unary'
  ? (request: MessageShape<M['input']>, ctx: CallContext) => Promise<MessageInitShape<M['output']>>
  : M['methodKind'] extends 'server_streaming'
    ? (request: MessageShape<M['input']>, stream: ServerStream<M['output']>, ctx: CallContext) => Promise<void>
    : M['methodKind'] extends 'client_streaming'
      ? (requests: AsyncIterable<MessageShape<M['input']>>, ctx: CallContext) => Promise<MessageInitShape<M['output']>>
      : (requests: AsyncIterable<MessageShape<M['input']>>, stream: ServerStream<M['output']>, ctx: CallContext) => Promise<void>;

/** Handlers for every method of a service, keyed by the method's local (camelCase) name. */
export type ServiceImpl<S extends DescService> = { [K in keyof S['method']]: Handler<S['method'][K]> };

/** Per-call options on the client. */
export interface CallOptions {
  /** Milliseconds from now; the call fails with DEADLINE_EXCEEDED after it. */
  timeoutMs?: number;
  /** Aborting cancels the call (CANCELLED). */
  signal?: AbortSignal;
  metadata?: Metadata | Record<string, string>;
}

/** A stream of responses the client can stop early. */
export interface ResponseStream<O extends DescMessage> extends AsyncIterable<MessageShape<O>> {
  cancel(): void;
}

/** A bidirectional call from the client side. */
export interface BidiStream<I extends DescMessage, O extends DescMessage> extends ResponseStream<O> {
  /** Queues a message; resolves once it has been handed to the transport. */
  send(message: MessageInitShape<I>): Promise<void>;
  /** Half-closes the request side. */
  end(): void;
}

/** A typed client method, by kind. */
export type ClientMethod<M extends Method> = M['methodKind'] extends 'unary'
  ? (request: MessageInitShape<M['input']>, options?: CallOptions) => Promise<MessageShape<M['output']>>
  : M['methodKind'] extends 'server_streaming'
    ? (request: MessageInitShape<M['input']>, options?: CallOptions) => ResponseStream<M['output']>
    : M['methodKind'] extends 'client_streaming'
      ? (requests: AsyncIterable<MessageInitShape<M['input']>>, options?: CallOptions) => Promise<MessageShape<M['output']>>
      : (options?: CallOptions) => BidiStream<M['input'], M['output']>;

/** A typed client for a whole service, plus close(). */
export type Client<S extends DescService> = { [K in keyof S['method']]: ClientMethod<S['method'][K]> } & {
  close(): void;
  /** Resolves when the channel is connected, or rejects after timeoutMs. */
  waitForReady(timeoutMs: number): Promise<void>;
};
