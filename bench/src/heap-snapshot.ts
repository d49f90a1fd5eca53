// The live JavaScript heap of a Node.js process, from a heap snapshot it writes on a signal
// (`--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=<dir>`): V8 collects garbage in full before it
// writes one, so the sum of its objects' self sizes is what the process holds, independent of the
// machine's load and of when the collector last ran (RSS and PSS are neither). Part of
// router-bench.ts (memory per idle client).
import fs from 'node:fs';
import path from 'node:path';

/** Node flags that make a process write a heap snapshot into `dir` on SIGUSR2. */
export function heapSnapshotFlags(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];
}

/**
 * Sum of the self sizes of every object in a .heapsnapshot file. The file is read as a stream and
 * only its "nodes" array is parsed: a snapshot of thousands of clients is hundreds of megabytes,
 * more than one string (or JSON.parse) may hold.
 */
export async function heapBytesOf(file: string): Promise<number> {
  let head = '';
  let fields: string[] | undefined;
  let stride = 0;
  let self = -1;
  let index = 0;
  let value = -1;
  let total = 0;
  let done = false;
  for await (const chunk of fs.createReadStream(file, { encoding: 'latin1', highWaterMark: 1 << 20 })) {
    let text = chunk as string;
    if (!fields) {
      head += text;
      const start = head.indexOf('"nodes":[');
      if (start < 0) continue;
      const meta = /"node_fields":\[([^\]]*)\]/.exec(head);
      if (!meta) throw new Error(`${file}: no node_fields before the nodes`);
      fields = JSON.parse(`[${meta[1]}]`) as string[];
      stride = fields.length;
      self = fields.indexOf('self_size');
      if (self < 0) throw new Error(`${file}: no self_size in the snapshot's node fields`);
      text = head.slice(start + '"nodes":['.length);
      head = '';
    }
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) {
        value = (value < 0 ? 0 : value * 10) + (c - 0x30);
        continue;
      }
      if (value >= 0) {
        if (index % stride === self) total += value;
        index++;
        value = -1;
      }
      if (c === 0x5d /* ] */) {
        done = true;
        break;
      }
    }
    if (done) break;
  }
  if (!done) throw new Error(`${file}: the nodes array does not end (a snapshot still being written?)`);
  return total;
}

/**
 * Signals `pid` (started with heapSnapshotFlags(dir)), waits for its snapshot file to be complete
 * (the process writes it from its main thread: a file that parses is whole), and returns its live
 * heap in bytes. The file is deleted (or moved into PGS_BENCH_KEEP_HEAP_SNAPSHOTS, for bench:heap-diff).
 */
export async function liveHeapBytes(pid: number, dir: string, timeoutMs = 120_000): Promise<number> {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  let lastSize = -1;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    const full = path.join(dir, file);
    const size = fs.statSync(full).size;
    // Still being written while it grows.
    if (size === 0 || size !== lastSize) {
      lastSize = size;
      continue;
    }
    let bytes: number;
    try {
      bytes = await heapBytesOf(full);
    } catch {
      // Not whole yet (a pause in the writing): look again.
      lastSize = -1;
      continue;
    }
    // Kept for bench:heap-diff when asked (PGS_BENCH_KEEP_HEAP_SNAPSHOTS=<dir>), else deleted.
    const keep = process.env.PGS_BENCH_KEEP_HEAP_SNAPSHOTS;
    if (keep) {
      fs.mkdirSync(keep, { recursive: true });
      fs.renameSync(full, path.join(keep, `${path.basename(dir)}-${Date.now()}.heapsnapshot`));
    } else fs.rmSync(full, { force: true });
    return bytes;
  }
  throw new Error(`process ${pid} wrote no heap snapshot into ${dir} within ${timeoutMs} ms (started without heapSnapshotFlags?)`);
}
