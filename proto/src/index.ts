/** The pgs contracts: generated protobuf-es schemas and types (see proto/pgs/**). */
export * from './gen/pgs/common/v1/resources_pb.js';
export * from './gen/pgs/common/v1/tenant_pb.js';
export * from './gen/pgs/common/v1/host_pb.js';
export * from './gen/pgs/common/v1/route_pb.js';
export * from './gen/pgs/common/v1/event_pb.js';
export * from './gen/pgs/common/v1/backup_pb.js';
export * from './gen/pgs/common/v1/version_pb.js';
export * from './gen/pgs/operator/v1/coordinator_pb.js';
export * from './gen/pgs/agent/v1/agent_pb.js';
export * from './gen/pgs/routing/v1/routes_pb.js';
export * from './gen/pgs/security/v1/enrollment_pb.js';
