import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fleetLayout, hostPlans } from './layout.js';

describe('fleet layout', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-fleet-layout-'));
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('keeps agent data and backups under the state dir when the postgres user can enter it, else under /var/tmp', () => {
    fs.chmodSync(base, 0o755);
    const open = fleetLayout(path.join(base, 'repo', '.pgs', 'local'));
    expect(open.agentsDir).toBe(path.join(base, 'repo', '.pgs', 'local', 'agents'));
    expect(open.backupsDir).toBe(path.join(base, 'repo', '.pgs', 'local', 'backups'));
    fs.chmodSync(base, 0o700);
    const closed = fleetLayout(path.join(base, 'repo', '.pgs', 'local'));
    expect(closed.agentsDir).toMatch(/^\/var\/tmp\/pgs-local-[0-9a-f]{12}\/agents$/);
    expect(path.dirname(closed.backupsDir)).toBe(path.dirname(closed.agentsDir));
    // The same state dir always maps to the same place, so a restart finds its tenants' data.
    expect(fleetLayout(path.join(base, 'repo', '.pgs', 'local')).agentsDir).toBe(closed.agentsDir);
  });

  it('names hosts h1.. with zones a.. on the given addresses', () => {
    const layout = fleetLayout(path.join(base, 'x'));
    expect(hostPlans(layout, ['127.0.0.11', '127.0.0.12']).map((h) => `${h.id}@${h.address}/${h.zone}`)).toEqual(['h1@127.0.0.11/a', 'h2@127.0.0.12/b']);
  });
});
