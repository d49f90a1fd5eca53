#!/usr/bin/env node
// Composition root: config, logger, router, signals.
import { createLogger, handleShutdown, runMain } from '@pgs/service-kit';
import { readRouterConfig } from './config.js';
import { startRouter } from './router.js';

runMain(async () => {
  const read = readRouterConfig(process.argv.slice(2), process.env);
  if (read.kind === 'help') {
    process.stdout.write(read.text);
    return;
  }
  const { config } = read;
  const log = createLogger({ app: 'router', level: config.logLevel, buffered: true });
  const router = await startRouter(config, log);
  process.on('SIGHUP', () => {
    // Already logged and counted where it failed; the previous certificate stays in use.
    const kept = (err: unknown): void => log.debug({ err: (err as Error).message }, 'SIGHUP reload kept the previous certificate');
    try {
      void Promise.resolve(router.reloadTls()).catch(kept);
    } catch (err) {
      kept(err);
    }
  });
  // The shutdown deadline of the process is the connection drain deadline plus a margin to close the rest.
  handleShutdown(log, () => router.stop(), { timeoutMs: config.shutdownTimeout + 5000 });
});
