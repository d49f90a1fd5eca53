/** Bridge between protobuf-es v2 service descriptors and @grpc/grpc-js: typed servers and clients. */
export { addService, methodPath, serviceDefinition, type ServiceOptions } from './server.js';
export { createClient } from './client.js';
export { EncodedMessage } from './encoded.js';
export { Code, isServiceError, RpcError } from './rpc-error.js';
export type { BidiStream, CallContext, CallOptions, Client, ClientMethod, Handler, ResponseStream, ServerStream, ServiceImpl } from './types.js';
export {
  COORDINATOR_KEEPALIVE,
  PATIENT_KEEPALIVE,
  createLeaderClient,
  nextAddress,
  splitAddresses,
  NOT_LEADER,
  type LeaderClientOptions,
} from './leader-client.js';
