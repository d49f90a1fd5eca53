// Backups into an S3 repository: the fleet's repository is a real S3-compatible server (s3rver, on
// loopback over HTTPS with its own certificate), reached by pgBackRest on every agent; a tenant
// restored to a time from it has exactly the rows committed before that time, and the objects the
// server holds are encrypted with the fleet's backup key.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archivedPast, backedUpTenant, idsOf, insertRange, momentBetweenWrites, range, restoreAs } from '../harness/backups.js';
import { startS3Server, type S3Server } from '../harness/s3-server.js';
import { useFleet } from '../harness/use-fleet.js';

describe('backups into an S3 repository', () => {
  let s3: S3Server | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-e2e-s3-'));
  beforeAll(async () => {
    s3 = await startS3Server(dir);
  });
  afterAll(async () => {
    await s3?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const fleet = useFleet(() => {
    if (!s3) throw new Error('S3 server did not start');
    return {
      name: 'backup-s3',
      block: 32,
      agents: 2,
      routers: 1,
      coordinatorArgs: [
        '--backup-repo',
        's3',
        '--backup-s3-endpoint',
        s3.endpoint,
        '--backup-s3-port',
        String(s3.port),
        '--backup-s3-bucket',
        s3.bucket,
        '--backup-s3-region',
        s3.region,
        '--backup-s3-path',
        '/pgs-e2e',
        '--backup-s3-ca-file',
        s3.caFile,
      ],
      coordinatorEnv: { PGS_BACKUP_S3_KEY: s3.accessKey, PGS_BACKUP_S3_SECRET: s3.secretKey },
    };
  });

  it('restore to a time from S3 gives exactly the rows committed before it; the objects are encrypted', async () => {
    const f = fleet();
    const marker = `pgs-marker-${Math.random().toString(36).slice(2)}`;
    const { id, password, login } = await backedUpTenant(f, 's3', {
      table: `create table rows (id int primary key, note text default repeat('${marker}', 20))`,
    });
    await insertRange(f, login, 1, 50);
    const t = await momentBetweenWrites(f, login);
    await insertRange(f, login, 51, 80);
    await archivedPast(f, id, new Date(t.getTime() + 1000));

    const { login: copyLogin } = await restoreAs(f, id, password, ['--to-time', t.toISOString()]);
    expect(await idsOf(f, copyLogin)).toEqual(range(1, 50));

    const objects = fs.readdirSync(s3?.directory ?? '', { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(objects.some((e) => e.parentPath.includes('archive'))).toBe(true);
    for (const e of objects) expect(fs.readFileSync(path.join(e.parentPath, e.name)).includes(marker)).toBe(false);
  }, 240_000);
});
