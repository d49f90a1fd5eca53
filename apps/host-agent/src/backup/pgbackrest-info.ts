/**
 * `pgbackrest info --output=json` of one stanza, read into what the agent reports. Pure.
 * The JSON is an array with one object per stanza: `backup` (each with label, prior, type,
 * timestamp.start/stop in epoch seconds, info.size, info.repository.delta, lsn.start/stop and the
 * WAL segments archive.start/stop), `archive` (per database: min and max WAL) and `status`
 * (code 0 ok, 1 missing stanza path, 2 no valid backups, 99 other: an unreadable info file, which
 * with an encrypted repository means a wrong or missing key).
 * Docs: https://pgbackrest.org/command.html#command-info
 */
import { AgentError } from '../errors.js';
import type { BackupKind, BackupResult } from './backup-types.js';

/** One backup as listed by info. */
export interface InfoBackup {
  label: string;
  priorLabel: string;
  type: BackupKind;
  startedAtMs: number;
  finishedAtMs: number;
  sizeBytes: number;
  repoSizeBytes: number;
  lsnStart: string;
  lsnStop: string;
  /** From the first WAL segment's name ('' when unknown → 0). */
  timeline: number;
  error: boolean;
}

/** What info says of one stanza. */
export interface StanzaInfo {
  name: string;
  /** 'ok'; 'missing' (no such stanza); 'unreadable' (its info files cannot be read: wrong key, damage); 'other'. */
  state: 'ok' | 'no-backup' | 'missing' | 'unreadable' | 'other';
  /** pgBackRest's status message (sanitized: printable characters only). */
  message: string;
  /** Oldest first, as pgBackRest lists them. */
  backups: InfoBackup[];
  archiveMinWal: string;
  archiveMaxWal: string;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** `text` with every control character (below U+0020) replaced by a space. */
function withoutControlCharacters(text: string): string {
  let out = '';
  for (const ch of text) out += ch.charCodeAt(0) < 0x20 ? ' ' : ch;
  return out;
}

/** Text safe for a log line or a report: no control or binary characters (an unreadable encrypted file shows its bytes). */
export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e\n]+/g, '?').trim();
}

/** The timeline a WAL segment name starts with (8 hex digits), 0 when it is not one. */
export function timelineOfWal(wal: string): number {
  return /^[0-9A-F]{24}$/i.test(wal) ? parseInt(wal.slice(0, 8), 16) : 0;
}

function kindOf(type: string): BackupKind {
  if (type === 'diff') return 'DIFF';
  if (type === 'incr') return 'INCR';
  return 'FULL';
}

function stateOf(code: number, message: string): StanzaInfo['state'] {
  if (code === 0) return 'ok';
  if (code === 1) return 'missing';
  if (code === 2) return 'no-backup';
  if (/unable to load info file/i.test(message)) return 'unreadable';
  return 'other';
}

/** Parses the info output of one stanza; throws BACKUP_FAILED when it is not pgBackRest's info JSON. */
export function parseStanzaInfo(output: string, stanza: string): StanzaInfo {
  let parsed: unknown;
  try {
    // An unreadable (encrypted) info file's bytes may be in a status message as raw control
    // characters, which JSON does not allow in strings; outside strings they are just whitespace.
    parsed = JSON.parse(withoutControlCharacters(output));
  } catch {
    throw new AgentError('BACKUP_FAILED', `pgbackrest info did not print JSON: ${printable(output).slice(0, 300)}`);
  }
  if (!Array.isArray(parsed)) throw new AgentError('BACKUP_FAILED', 'pgbackrest info printed JSON that is not a list of stanzas');
  const s = parsed.map(obj).find((x) => x.name === stanza);
  if (!s) return { name: stanza, state: 'missing', message: 'pgbackrest info does not list the stanza', backups: [], archiveMinWal: '', archiveMaxWal: '' };
  const status = obj(s.status);
  // A per-repository status carries the detail (the file that could not be read); the stanza's says "other".
  const repoMessages = (Array.isArray(s.repo) ? s.repo : []).map((r) => str(obj(obj(r).status).message)).filter((m) => m !== '' && m !== 'ok');
  const message = printable([str(status.message), ...repoMessages].join(': '));
  const backups = (Array.isArray(s.backup) ? s.backup : []).map(obj).map((b): InfoBackup => {
    const info = obj(b.info);
    const ts = obj(b.timestamp);
    const lsn = obj(b.lsn);
    return {
      label: str(b.label),
      priorLabel: str(b.prior),
      type: kindOf(str(b.type)),
      startedAtMs: num(ts.start) * 1000,
      finishedAtMs: num(ts.stop) * 1000,
      sizeBytes: num(info.size),
      repoSizeBytes: num(obj(info.repository).delta),
      lsnStart: str(lsn.start),
      lsnStop: str(lsn.stop),
      timeline: timelineOfWal(str(obj(b.archive).start)),
      error: b.error === true,
    };
  });
  // One entry per database system the stanza has seen (a stanza upgrade adds one); the last is current.
  const archives = (Array.isArray(s.archive) ? s.archive : []).map(obj);
  const current = archives[archives.length - 1];
  const minWal = archives.map((a) => str(a.min)).find((w) => w !== '') ?? '';
  return { name: stanza, state: stateOf(num(status.code), message), message, backups, archiveMinWal: minWal, archiveMaxWal: current ? str(current.max) : '' };
}

/** The result of the backup labelled `label` (the newest when '' ), with the stanza's totals. */
export function backupResultFrom(info: StanzaInfo, label = ''): BackupResult {
  const b = label === '' ? info.backups[info.backups.length - 1] : info.backups.find((x) => x.label === label);
  if (!b)
    throw new AgentError(
      'BACKUP_FAILED',
      label === '' ? `pgbackrest info lists no backup of stanza ${info.name}` : `pgbackrest info does not list backup ${label} of stanza ${info.name}`,
    );
  return {
    label: b.label,
    priorLabel: b.priorLabel,
    type: b.type,
    startedAtMs: b.startedAtMs,
    finishedAtMs: b.finishedAtMs,
    sizeBytes: b.sizeBytes,
    repoSizeBytes: b.repoSizeBytes,
    lsnStart: b.lsnStart,
    lsnStop: b.lsnStop,
    timeline: b.timeline,
    stanzaRepoSizeBytes: info.backups.reduce((sum, x) => sum + x.repoSizeBytes, 0),
    archiveMinWal: info.archiveMinWal,
    archiveMaxWal: info.archiveMaxWal,
  };
}
