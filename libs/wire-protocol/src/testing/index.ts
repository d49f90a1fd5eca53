// Test helpers for @pgs/wire-protocol and its users: captured client packets, builders, arbitraries.
// Import as `@pgs/wire-protocol/testing` from tests only (it reads files and uses fast-check).
export * from './arbitraries.js';
export * from './builders.js';
export * from './fixtures.js';
export * from './invariants.js';
