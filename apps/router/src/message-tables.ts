/**
 * Small tools for the links that scan PostgreSQL messages as they pass (transaction-link.ts,
 * carried-session.ts): a lookup table of message type bytes, and a check that a scan handed back
 * a chunk unchanged, so it can be written as it came instead of as its parts.
 */

/** A table of message type bytes: an index, not a Set's hash lookup, for every message both ways. */
export function typeTable(types: Iterable<number>): Uint8Array {
  const table = new Uint8Array(256);
  for (const t of types) table[t] = 1;
  return table;
}

/** True when `parts` are `chunk` itself, cut in consecutive slices (nothing changed, added or held back). */
export function isChunk(parts: Buffer[], chunk: Buffer): boolean {
  let at = chunk.byteOffset;
  for (const p of parts) {
    if (p.buffer !== chunk.buffer || p.byteOffset !== at) return false;
    at += p.length;
  }
  return at === chunk.byteOffset + chunk.length;
}
