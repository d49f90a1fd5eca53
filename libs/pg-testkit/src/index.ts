/** Test support shared by the apps' integration tests: real PostgreSQL servers, free ports. */
export { findPostgresBinDir, postgresOsUser } from './postgres-binaries.js';
export { type TestPostgres } from './postgres-process.js';
export { freePort, startTestPostgres, type TestPostgresOptions } from './test-postgres.js';
export { startTestPostgresPair, STANDBY_NAME, type TestPostgresPair, type TestPostgresPairOptions } from './postgres-pair.js';
