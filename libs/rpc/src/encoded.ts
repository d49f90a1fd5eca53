/**
 * A response encoded once and sent as is on any number of streams. A feed that sends the same
 * message to every subscriber (a route change to a hundred routers) would otherwise build and
 * encode it once per stream: at a hundred routers that was most of what the coordinator did
 * while tenants were created, and the routers fell behind it.
 */
import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';

/** `init` of `schema` as wire bytes (a Buffer over the encoded bytes, not a copy): what grpc-js writes. */
export function encodeMessage(schema: DescMessage, init: unknown): Buffer {
  const bytes = toBinary(schema, create(schema, init as never));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class EncodedMessage<O extends DescMessage> {
  private constructor(
    /** The wire bytes: shared by every stream it is sent on, so never changed. */
    readonly bytes: Buffer,
    /** Only for the type: a message encoded for one schema is not sent where another is expected. */
    readonly schema: O,
  ) {}

  /** `init` of `schema`, encoded now. */
  static of<O extends DescMessage>(schema: O, init: MessageInitShape<O>): EncodedMessage<O> {
    return new EncodedMessage(encodeMessage(schema, init), schema);
  }
}
