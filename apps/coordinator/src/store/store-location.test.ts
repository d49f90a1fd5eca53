import { describe, expect, it } from 'vitest';
import { parseStoreLocation } from './store-location.js';

describe('parseStoreLocation', () => {
  it('keeps SQLite in the data dir by default, or in the directory sqlite: names', () => {
    expect(parseStoreLocation('', '/data')).toEqual({ kind: 'sqlite', dataDir: '/data' });
    expect(parseStoreLocation('sqlite:/var/lib/pgs', '/data')).toEqual({ kind: 'sqlite', dataDir: '/var/lib/pgs' });
    expect(parseStoreLocation('sqlite:///var/lib/pgs', '/data')).toEqual({ kind: 'sqlite', dataDir: '/var/lib/pgs' });
  });

  it('takes a PostgreSQL URL, with several servers', () => {
    expect(parseStoreLocation('postgres://pgs@10.0.0.1:5432,10.0.0.2:5432/pgs', '/data')).toEqual({
      kind: 'postgres',
      url: 'postgres://pgs@10.0.0.1:5432,10.0.0.2:5432/pgs',
    });
  });

  it('refuses anything else, naming the forms that work and never echoing a password', () => {
    expect(() => parseStoreLocation('mysql://u:secret@h/db', '/d')).toThrow(/neither sqlite:<dir> nor postgres:\/\//);
    expect(() => parseStoreLocation('mysql://u:secret@h/db', '/d')).not.toThrow(/secret/);
    expect(() => parseStoreLocation('sqlite:', '/d')).toThrow(/needs a directory/);
  });
});
