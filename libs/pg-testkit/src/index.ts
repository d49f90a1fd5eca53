/** Test support shared by the apps' integration tests: real PostgreSQL servers, free ports. */
export { findPostgresBinDir, postgresOsUser } from './postgres-binaries.js';
export { freePort, startTestPostgres, type TestPostgres, type TestPostgresOptions } from './test-postgres.js';
