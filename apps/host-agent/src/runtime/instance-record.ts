/**
 * The small JSON file an agent keeps per instance (port, last applied spec), so a restarted agent
 * adopts what runs and knows whether a dead instance should be brought back. Written atomically
 * (temp file + rename) so a kill -9 mid-write leaves the old record, never half a record.
 * It holds no secret: roles and their verifiers live only inside PostgreSQL.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RecoveryResult } from '../backup/backup-types.js';
import type { RuntimeSpec } from './runtime.js';

/** What is remembered of one instance. */
export interface InstanceRecord {
  tenantId: string;
  address: string;
  port: number;
  spec: RuntimeSpec;
  createdAt: string;
  /** Where the recovery ended, for an instance created from a backup. */
  recovery?: RecoveryResult;
}

/** Reads a record, or undefined when the file is absent. */
export function readInstanceRecord(file: string): InstanceRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as InstanceRecord;
}

/** Writes a record atomically, readable by root only. */
export function writeInstanceRecord(file: string, record: InstanceRecord): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
