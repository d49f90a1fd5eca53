// Micro-benchmark of @pgs/wire-protocol: startup packets decoded per second and framer
// throughput on realistic backend streams. Not a test: it prints a table and always exits 0.
//
//   npm run bench:wire -w bench
//
// Goals from the issue: a startup decode well under 5 µs per packet; the framer at 1 GB/s or
// more on 8 KiB DataRow traffic, one core.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import {
  decodeBackendMessage,
  encodeFrame,
  encodeStartupMessage,
  MessageFramer,
  PROTOCOL_3_2,
  StartupDecoder,
  decodeStartupPacket,
  type Frame,
} from '@pgs/wire-protocol';

const SOCKET_CHUNK = 64 * 1024; // what a TCP socket read typically hands over

interface Row {
  case: string;
  metric: string;
  value: string;
  goal: string;
}

/**
 * Operations per second of `fn`: the best of `slices` timed slices after a warm-up. The best
 * slice, not the mean, because other processes on a shared machine only ever slow a slice down.
 */
function opsPerSecond(fn: () => void, slices = 10, sliceMs = 100): number {
  const warmEnd = performance.now() + 200;
  while (performance.now() < warmEnd) fn();
  let best = 0;
  for (let s = 0; s < slices; s++) {
    let ops = 0;
    const start = performance.now();
    let now = start;
    while (now - start < sliceMs) {
      for (let i = 0; i < 200; i++) fn();
      ops += 200;
      now = performance.now();
    }
    best = Math.max(best, (ops * 1000) / (now - start));
  }
  return best;
}

function startupRows(): Row[] {
  const psql = encodeStartupMessage({ parameters: { user: 'alice', database: 'acme', application_name: 'psql' } });
  const rich = encodeStartupMessage({
    protocol: PROTOCOL_3_2,
    parameters: {
      user: 'alice.acme',
      database: 'acme',
      application_name: 'pgbench',
      client_encoding: 'UTF8',
      options: '-c pgs.tenant=acme -c statement_timeout=5s',
      DateStyle: 'ISO',
      '_pq_.test': 'on',
    },
  });
  const rows: Row[] = [];
  const add = (name: string, fn: () => void) => {
    const ops = opsPerSecond(fn);
    rows.push({ case: name, metric: 'decodes/s', value: Math.round(ops).toLocaleString('en-US'), goal: '' });
    rows.push({ case: name, metric: 'µs/packet', value: (1e6 / ops).toFixed(3), goal: '< 5' });
  };
  add(`psql StartupMessage (${psql.length} B), one chunk`, () => decodeStartupPacket(psql));
  add(`3.2 StartupMessage (${rich.length} B), one chunk`, () => decodeStartupPacket(rich));
  const a = rich.subarray(0, 20);
  const b = rich.subarray(20);
  add(`3.2 StartupMessage (${rich.length} B), two chunks`, () => {
    const d = new StartupDecoder();
    d.push(a);
    d.push(b);
  });
  return rows;
}

/** A stream of `count` messages from `make`, cut into socket-sized chunks. */
function chunkedStream(message: Buffer, totalBytes: number): { chunks: Buffer[]; bytes: number; messages: number } {
  const count = Math.ceil(totalBytes / message.length);
  const stream = Buffer.allocUnsafe(count * message.length);
  for (let i = 0; i < count; i++) message.copy(stream, i * message.length);
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += SOCKET_CHUNK) chunks.push(stream.subarray(off, off + SOCKET_CHUNK));
  return { chunks, bytes: stream.length, messages: count };
}

function dataRow(columns: Buffer[]): Buffer {
  let size = 2;
  for (const c of columns) size += 4 + c.length;
  const body = Buffer.allocUnsafe(size);
  body.writeUInt16BE(columns.length, 0);
  let off = 2;
  for (const c of columns) {
    body.writeInt32BE(c.length, off);
    off = c.copy(body, off + 4) + off + 4;
  }
  return encodeFrame(0x44, body);
}

function framerRows(): Row[] {
  const rows: Row[] = [];
  const cases: Array<[string, Buffer, string]> = [
    // 8 KiB of column data: 8203-byte messages, so most 64 KiB chunks end mid-message and the
    // straddling message is assembled (copied), as on a real socket.
    ['DataRow 8 KiB rows, 64 KiB chunks', dataRow([Buffer.alloc(8192, 0x61)]), '>= 1000'],
    ['DataRow 3 small columns (~40 B), 64 KiB chunks', dataRow([Buffer.from('12345'), Buffer.from('alice@example.com'), Buffer.from('2026-11-23')]), ''],
  ];
  for (const [name, message, goal] of cases) {
    const { chunks, bytes, messages } = chunkedStream(message, 64 * 1024 * 1024);
    let frames = 0;
    const run = () => {
      const f = new MessageFramer();
      for (const c of chunks) frames += f.push(c).length;
    };
    run(); // warm-up
    let best = Infinity; // seconds for one pass over the stream, best of several
    for (let i = 0; i < 8; i++) {
      frames = 0;
      const start = performance.now();
      run();
      best = Math.min(best, (performance.now() - start) / 1000);
      if (frames !== messages) throw new Error(`framed ${frames} messages, expected ${messages}`);
    }
    rows.push({ case: name, metric: 'MB/s', value: Math.round(bytes / best / 1e6).toLocaleString('en-US'), goal });
    rows.push({ case: name, metric: 'messages/s', value: Math.round(messages / best).toLocaleString('en-US'), goal: '' });
  }
  // The router's real job on the backend stream: frame and decode the startup reply, then step aside.
  const reply = Buffer.concat([
    encodeFrame(0x52, Buffer.from([0, 0, 0, 0])),
    ...[
      'application_name',
      'client_encoding',
      'DateStyle',
      'integer_datetimes',
      'IntervalStyle',
      'is_superuser',
      'server_encoding',
      'server_version',
      'session_authorization',
      'standard_conforming_strings',
      'TimeZone',
    ].map((n) => encodeFrame(0x53, Buffer.from(`${n}\0value\0`))),
    encodeFrame(0x4b, Buffer.from('000010e1cafebabe', 'hex')),
    encodeFrame(0x5a, Buffer.from('I')),
  ]);
  const ops = opsPerSecond(() => {
    const f = new MessageFramer();
    for (const fr of f.push(reply, (x: Frame) => x.type === 0x5a)) decodeBackendMessage(fr);
  });
  rows.push({ case: `startup reply (${reply.length} B, 14 messages): frame + decode`, metric: 'µs/reply', value: (1e6 / ops).toFixed(3), goal: '' });
  return rows;
}

function printTable(rows: Row[]): void {
  const header: Row = { case: 'case', metric: 'metric', value: 'value', goal: 'goal' };
  const widths = (['case', 'metric', 'value', 'goal'] as const).map((k) => Math.max(...[header, ...rows].map((r) => r[k].length)));
  const line = (r: Row) => `| ${r.case.padEnd(widths[0]!)} | ${r.metric.padEnd(widths[1]!)} | ${r.value.padStart(widths[2]!)} | ${r.goal.padEnd(widths[3]!)} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

console.log(`@pgs/wire-protocol micro-benchmark — node ${process.version}, one core, best of several slices\n`);
printTable([...startupRows(), ...framerRows()]);
