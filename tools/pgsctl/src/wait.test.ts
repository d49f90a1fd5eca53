import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CommandContext, type CliIo } from './context.js';
import { startCoordinator, type CoordinatorProcess } from './testing/coordinator-process.js';
import { waitForTenant } from './wait.js';

/** Long enough that only an event (or a re-subscription) can end a wait within the test's deadline. */
const NO_POLLING_MS = 600_000;

function captured(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

describe("--wait follows the real coordinator's event stream", () => {
  let coordinator: CoordinatorProcess;
  const prefix = `w${Date.now().toString(36)}`;

  beforeAll(async () => {
    coordinator = await startCoordinator();
  });
  afterAll(async () => {
    await coordinator?.stop();
  });

  async function context(): Promise<{ ctx: CommandContext; stderr: () => string }> {
    const stderr = captured();
    const stdin = new PassThrough();
    stdin.end();
    const io: CliIo = { env: {}, cwd: '/nonexistent', home: '/nonexistent', stdout: captured().stream, stderr: stderr.stream, stdin, now: () => Date.now() };
    const ctx = new CommandContext(io, {
      coordinator: coordinator.grpc,
      output: 'table',
      requestTimeout: 10_000,
      ca: coordinator.caFile,
      tokenFile: coordinator.tokenFile,
    });
    await ctx.prepare();
    return { ctx, stderr: stderr.text };
  }

  async function createTenant(ctx: CommandContext, id: string): Promise<void> {
    await ctx.client.createTenant({ id, ownerPassword: 'secret-pw-1' }, ctx.call());
  }

  it('ends on the event of the change, with no periodic re-read to fall back on', async () => {
    const { ctx, stderr } = await context();
    const id = `${prefix}-a`;
    try {
      await createTenant(ctx, id);
      const waiting = waitForTenant(ctx, id, { gone: true }, 60_000, { refreshMs: NO_POLLING_MS });
      // The first reading is on the progress line once the watch is up; only then change the tenant.
      await vi.waitFor(() => expect(stderr()).toContain(`tenant ${id}: NEW`), { timeout: 20_000, interval: 50 });
      await ctx.client.deleteTenant({ id }, ctx.call());
      await expect(waiting).resolves.toBeUndefined();
      expect(stderr()).toMatch(new RegExp(`^tenant ${id} deleted \\(`, 'm'));
    } finally {
      ctx.close();
    }
  }, 90_000);

  it('watches again after a coordinator restart and sees a change made right after it', async () => {
    const { ctx, stderr } = await context();
    const other = await context();
    const id = `${prefix}-b`;
    try {
      await createTenant(ctx, id);
      const waiting = waitForTenant(ctx, id, { gone: true }, 80_000, { refreshMs: NO_POLLING_MS });
      await vi.waitFor(() => expect(stderr()).toContain(`tenant ${id}: NEW`), { timeout: 20_000, interval: 50 });
      await coordinator.restart();
      // Changed at once, most likely before the waiter has subscribed again: the replay after its
      // last event id, or its re-read after re-subscribing, must still see it.
      await other.ctx.client.deleteTenant({ id }, other.ctx.call());
      await expect(waiting).resolves.toBeUndefined();
      expect(stderr()).toMatch(new RegExp(`^tenant ${id} deleted \\(`, 'm'));
    } finally {
      ctx.close();
      other.ctx.close();
    }
  }, 120_000);
});
