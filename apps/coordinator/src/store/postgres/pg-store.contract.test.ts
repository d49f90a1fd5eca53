import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { describeStoreContract } from '../contract/store-contract.js';
import { openPostgresStore } from './pg-store.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
let server: TestPostgres;
let databases = 0;

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.28`, users: [{ name: 'coord', password: PW }], settings: { max_connections: '300' } });
});
afterAll(async () => server?.stop());

// Every test gets a database of its own, created empty and migrated by the store.
describeStoreContract('PostgreSQL', async ({ routeHistory }) => {
  const name = `contract_${++databases}`;
  const admin = await server.adminClient();
  await admin.query(`CREATE DATABASE ${name} OWNER coord`);
  await admin.end();
  return openPostgresStore({ url: server.url('coord', PW, name), routeHistory, log });
});
