/**
 * SQLite statements by their SQL, each prepared once on first use: for SQL built at run time from a
 * small set of shapes (a filter's clauses), and for statements run on every call (a token looked up
 * per API request), where preparing again each time cost more than running.
 */
import type Database from 'better-sqlite3';

export class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
