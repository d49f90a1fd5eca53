#!/usr/bin/env node
/** Composition root of the coordinator: config, logger, start, graceful stop. */
import { createLogger, handleShutdown, runMain } from '@pgs/service-kit';
import { readConfig } from './config.js';
import { startCoordinator } from './coordinator.js';
import { StoreOpenError } from './store/open-store.js';

runMain(async () => {
  const result = readConfig(process.argv.slice(2), process.env);
  if (result.kind === 'help') {
    process.stdout.write(result.text);
    return;
  }
  const config = result.config;
  const log = createLogger({ app: 'coordinator', level: config.logLevel });
  const coordinator = await startCoordinator(config, log).catch((err: unknown) => {
    if (!(err instanceof StoreOpenError)) throw err;
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
