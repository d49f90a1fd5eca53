/** Contracts used only by tests (the bridge's echo service). */
export * from './gen/pgs/testing/v1/echo_pb.js';
