/**
 * WAL file names as PostgreSQL writes them: a segment is named by its timeline and its number,
 * each in 8 hex digits ("000000020000000A0000003F"); positions (LSNs) are @pgs/tenancy's.
 * Docs: https://www.postgresql.org/docs/current/wal-internals.html
 */

/** Whether `name` is a WAL segment's ("000000020000000A0000003F": timeline, then the segment number). */
export function isSegmentName(name: string): boolean {
  return /^[0-9A-F]{24}$/.test(name);
}

/** The number of the segment `name` (a segment's name): two halves of 2^32 / size segments each. */
export function segmentNumber(name: string, segmentBytes: bigint): bigint {
  return BigInt(`0x${name.slice(8, 16)}`) * (0x1_0000_0000n / segmentBytes) + BigInt(`0x${name.slice(16, 24)}`);
}

/**
 * The LSN just past the WAL segment `name`, or undefined for any other file the archiver takes: a
 * timeline history, a .partial segment of a former timeline, a backup label.
 */
export function segmentEndLsn(name: string, segmentBytes: bigint): bigint | undefined {
  if (!isSegmentName(name) || segmentBytes <= 0n) return undefined;
  return (segmentNumber(name, segmentBytes) + 1n) * segmentBytes;
}

/** The timeline's id as WAL file names spell it. */
export function timelineHex(timeline: number): string {
  return timeline.toString(16).toUpperCase().padStart(8, '0');
}
