// The OCI images of the deployment guide: one per component, built with Podman from the release
// tarballs (nothing pulled), then run as a one-machine fleet on loopback (coordinator, agent and
// router containers joined with tokens) that serves a tenant to psql. Skips itself, saying so,
// only where Podman is not installed; CI installs it (apps/host-agent/scripts/setup-podman.sh).
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const hasPodman = spawnSync('podman', ['--version']).status === 0;

function npmRun(script: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', script, '-w', 'deploy'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe.skipIf(!hasPodman)('OCI images of every component (Podman)', () => {
  it('builds the images from the release and runs them as a fleet that serves a tenant', async () => {
    const built = await npmRun('images', 300_000);
    expect(built.code, built.output).toBe(0);
    for (const image of ['pgs-coordinator', 'pgs-router', 'pgs-agent', 'pgsctl']) expect(built.output).toContain(`localhost/${image}:`);
    const smoke = await npmRun('images:smoke', 300_000);
    expect(smoke.code, smoke.output).toBe(0);
    expect(smoke.output).toContain('ok: coordinator, agent and router images serve a tenant');
  }, 600_000);
});

if (!hasPodman) console.warn('images.test.ts: podman is not installed here, so the OCI image test is skipped (CI installs it)');
