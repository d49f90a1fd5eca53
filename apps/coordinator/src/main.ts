#!/usr/bin/env node
/** Composition root of the coordinator: config, logger, start, graceful stop. */
import { createLogger, handleShutdown, runMain } from '@pgs/service-kit';
import { readConfig } from './config.js';
import { startCoordinator } from './coordinator.js';
import { startHaCoordinator } from './leadership/ha-coordinator.js';
import { StoreUnavailableError } from './domain/errors.js';
import { StoreOpenError } from './store/open-store.js';
import { PgSchemaTooNewError } from './store/postgres/pg-schema.js';
import { parseStoreLocation } from './store/store-location.js';

runMain(async () => {
  const result = readConfig(process.argv.slice(2), process.env);
  if (result.kind === 'help') {
    process.stdout.write(result.text);
    return;
  }
  const config = result.config;
  const log = createLogger({ app: 'coordinator', level: config.logLevel });
  const location = parseStoreLocation(config.store, config.dataDir);
  // Several coordinators share a PostgreSQL store and one leads; SQLite is one coordinator's own.
  const start =
    location.kind === 'postgres' ? () => startHaCoordinator(config, location.url, log) : () => startCoordinator({ ...config, dataDir: location.dataDir }, log);
  const coordinator = await start().catch((err: unknown) => {
    if (!(err instanceof StoreOpenError || err instanceof StoreUnavailableError || err instanceof PgSchemaTooNewError)) throw err;
    // A store problem is the operator's to fix: say what and how, without a stack trace.
    log.fatal({ err }, 'cannot open the store');
    log.flush();
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(1);
  });
  handleShutdown(log, async () => {
    await coordinator.stop();
    log.flush();
  });
});
