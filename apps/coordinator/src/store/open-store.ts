/**
 * Opening the store at start: a missing or corrupt database is a clear error, never a silent
 * empty fleet. A data dir is initialised once (the database plus a marker file); afterwards a
 * missing database file means data loss and the coordinator refuses to start.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrations.js';
import { SecurityStore } from './security-store.js';
import { SqliteStore } from './sqlite-store.js';
import { SqliteTables } from './sqlite-tables.js';

/** The store cannot be opened; the message says what is wrong and what to do. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
}

/** File names inside the data dir. */
export const DB_FILE = 'coordinator.db';
/** Written when the data dir is initialised; its presence without the database means loss. */
export const MARKER_FILE = 'coordinator.initialized';

/** Options for openStore. */
export interface OpenStoreOptions {
  dataDir: string;
  /** Create a new, empty store when the data dir has never held one. */
  allowInit: boolean;
  routeHistory: number;
  now: number;
}

/** Opens (and on first start creates) the SQLite store, checks it and applies migrations. */
export function openStore(options: OpenStoreOptions): { store: SqliteStore; created: boolean; applied: number[] } {
  const { dataDir } = options;
  const dbPath = path.join(dataDir, DB_FILE);
  const markerPath = path.join(dataDir, MARKER_FILE);
  const dbExists = fs.existsSync(dbPath);
  if (!dbExists) {
    if (fs.existsSync(markerPath)) {
      const since = fs.readFileSync(markerPath, 'utf8').trim();
      throw new StoreOpenError(
        `the store ${dbPath} is missing, but this data dir was initialised (${since}); refusing to start with an empty fleet. Restore the file from a backup, or move the data dir away to start a new fleet on purpose.`,
      );
    }
    if (!options.allowInit) {
      throw new StoreOpenError(`no store at ${dbPath} and --allow-init is off; point --data-dir at an existing store or allow initialisation`);
    }
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  }
  let db: Database.Database;
  try {
    db = new Database(dbPath, { fileMustExist: dbExists });
  } catch (err) {
    throw new StoreOpenError(`cannot open the store ${dbPath}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma('journal_mode = WAL');
    // FULL: every commit fsyncs the WAL, so an acknowledged write survives a crash or power loss.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new StoreOpenError(`the store ${dbPath} is corrupt (quick_check: ${check}); restore it from a backup`);
    const tables = db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    if (dbExists && tables.n === 0) {
      throw new StoreOpenError(`the store ${dbPath} exists but holds no schema; it is not a coordinator store (or was truncated); restore it from a backup`);
    }
    const { version, applied } = migrate(db, options.now);
    if (!dbExists) fs.writeFileSync(markerPath, `initialised ${new Date(options.now).toISOString()}\n`, { mode: 0o600 });
    const store = new SqliteStore(db, new SqliteTables(db, options.routeHistory), new SecurityStore(db), dbPath, version);
    return { store, created: !dbExists, applied };
  } catch (err) {
    db.close();
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(`the store ${dbPath} cannot be used: ${(err as Error).message}; if it is corrupt, restore it from a backup`, { cause: err });
  }
}
