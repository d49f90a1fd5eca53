import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SHUTDOWN_TS = fileURLToPath(new URL('./shutdown.ts', import.meta.url));
const LOGGER_TS = fileURLToPath(new URL('./logger.ts', import.meta.url));

/** A service whose stop resolves and leaves `leak` open (or nothing), run as its own process. */
function service(leak: 'interval' | 'nothing'): string {
  return `
    import { handleShutdown } from ${JSON.stringify(SHUTDOWN_TS)};
    import { createLogger } from ${JSON.stringify(LOGGER_TS)};
    const log = createLogger({ app: 'shutdown-test', level: 'info' });
    const work = setInterval(() => undefined, 1000);
    const forgotten = ${leak === 'interval' ? 'setInterval(() => undefined, 1000)' : 'undefined'};
    handleShutdown(log, async () => clearInterval(work));
    process.stdout.write('ready\\n');
  `;
}

async function stopped(leak: 'interval' | 'nothing'): Promise<{ code: number | null; signal: string | null; ms: number; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', service(leak)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  // tsx compiles on start: slow on a loaded two-core machine.
  for (const until = Date.now() + 60_000; !out.includes('ready');) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`the service did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const signalled = Date.now();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const result = await exited;
  clearTimeout(killer);
  return { ...result, ms: Date.now() - signalled, out };
}

describe('handleShutdown', () => {
  it('exits by itself once the stop is done', async () => {
    const r = await stopped('nothing');
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.out).toContain('"msg":"stopped"');
    expect(r.out).not.toContain('a handle left open');
  }, 90_000);

  it('exits 0 soon after a stop that left a handle open, and names what kind was left', async () => {
    const r = await stopped('interval');
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.ms).toBeLessThan(12_000);
    const warning = r.out.split('\n').find((l) => l.includes('a handle left open'));
    expect(warning, r.out).toBeDefined();
    const logged = JSON.parse(warning as string) as { level: string; handles: string[] };
    expect(logged.level).toBe('warn');
    expect(logged.handles).toContain('Timeout');
  }, 90_000);
});
