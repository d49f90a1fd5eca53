/**
 * postgresql.auto.conf of a restored data directory. PostgreSQL reads it after postgresql.conf and
 * its includes, so a setting in it wins over the agent's pgs.conf. A restore brings the source's
 * file, to which pgBackRest adds restore_command and the recovery target. Before the restored
 * server starts, every setting the agent owns (above all archive_mode and archive_command: the new
 * instance must archive into its own stanza, never the source's) is taken out; once recovery has
 * ended, the recovery settings are taken out too (a later standby.signal must not stop at an old
 * target). Pure. Docs: https://www.postgresql.org/docs/current/config-setting.html#CONFIG-SETTING-CONFIGURATION-FILE
 */

/** Settings that drive archive recovery (pgBackRest writes them; PostgreSQL uses them only in recovery). */
export const RECOVERY_SETTINGS = [
  'restore_command',
  'recovery_target',
  'recovery_target_time',
  'recovery_target_xid',
  'recovery_target_lsn',
  'recovery_target_name',
  'recovery_target_action',
  'recovery_target_inclusive',
  'recovery_target_timeline',
];

/** The name a postgresql.conf line sets ('' for a comment or blank line). */
function settingName(line: string): string {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?/.exec(line);
  return m?.[1]?.toLowerCase() ?? '';
}

/** `text` without the lines that set any of `names` or a setting starting with `archive_`. */
export function withoutSettings(text: string, names: readonly string[], options: { archive: boolean }): string {
  const drop = new Set(names.map((n) => n.toLowerCase()));
  const kept = text.split('\n').filter((line) => {
    const name = settingName(line);
    if (name === '') return true;
    return !(drop.has(name) || (options.archive && name.startsWith('archive_')));
  });
  return kept.join('\n');
}
