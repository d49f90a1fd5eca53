/**
 * Which store the coordinator runs on, from --store: SQLite in a directory (the default, one
 * coordinator) or a PostgreSQL URL (several coordinators, one leading). Anything else is refused
 * with the forms that work, before anything is opened.
 */
import { ConfigError } from '@pgs/service-kit';

export type StoreLocation = { kind: 'sqlite'; dataDir: string } | { kind: 'postgres'; url: string };

/** `store` as given (empty = SQLite in `dataDir`). */
export function parseStoreLocation(store: string, dataDir: string): StoreLocation {
  const s = store.trim();
  if (s === '') return { kind: 'sqlite', dataDir };
  if (s.startsWith('sqlite:')) {
    const dir = s.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (dir === '') throw new ConfigError('--store sqlite: needs a directory, e.g. sqlite:/var/lib/pgs/coordinator');
    return { kind: 'sqlite', dataDir: dir };
  }
  if (/^postgres(ql)?:\/\//.test(s)) return { kind: 'postgres', url: s };
  throw new ConfigError(`--store "${s.replace(/:[^:@/]*@/, ':***@')}" is neither sqlite:<dir> nor postgres://user@host:port/database`);
}
