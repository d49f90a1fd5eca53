// Entry of a --workers worker process (node:cluster forks it; router.ts is the primary's side).
// It waits for its WorkerInit from the primary, serves clients, and leaves when told to stop, on
// SIGINT/SIGTERM (drain, as a single-process router does), or when the primary goes away.
import cluster from 'node:cluster';
import { createLogger, runMain } from '@pgs/service-kit';
import { runRouterWorker, type WorkerInit } from './router-worker.js';
import { IpcPeer } from './worker-ipc.js';

runMain(async () => {
  if (!cluster.isWorker || !process.send) throw new Error('worker-main.js is started by the router primary (--workers), not by hand');
  const ipc = new IpcPeer(process as unknown as ConstructorParameters<typeof IpcPeer>[0]);
  const init = await new Promise<WorkerInit>((resolve) => {
    ipc.handle('init', (body) => {
      resolve(body as WorkerInit);
      return 'ok';
    });
    // Messages sent before a listener exists are lost, so the primary waits for this before its init.
    ipc.note('hello', { pid: process.pid });
  });
  const log = createLogger({ app: 'router', level: init.config.logLevel, buffered: true }).child({ worker: init.index });
  const exit = (code: number): void => {
    ipc.close();
    process.exit(code);
  };
  const worker = await runRouterWorker(ipc, init, log, exit);
  ipc.note('listening', { listen: worker.plane.listen, cancel: worker.plane.cancelBound });
  log.info({ pid: process.pid }, 'router worker serving');
  const drain = (reason: string): void => {
    log.info({ reason }, 'worker stopping');
    void worker.stop(init.config.shutdownTimeout).then(() => exit(0));
  };
  // A signal to the whole process group (Ctrl-C) reaches workers too: drain like the primary does.
  process.once('SIGINT', () => drain('SIGINT'));
  process.once('SIGTERM', () => drain('SIGTERM'));
  // Orphaned by a crashed primary: nobody keeps the cache current any more.
  process.once('disconnect', () => drain('primary gone'));
});
