/**
 * The coordinator's gRPC server keeps a connection through event-loop turns longer than the old
 * 5 s keepalive timeout: Node runs the timeout's timer before it reads the ping's answer, so such a
 * turn dropped every connection with a ping in flight. The client runs in a child process, so the
 * server's busy turns do not stall it; pings every second (instead of every 10 s) make sure one is in
 * flight when each turn starts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../testing/harness.js';
import { GRPC_SERVER_OPTIONS } from './grpc-server-options.js';

const raw = (b: Buffer): Buffer => b;
const chat = {
  path: '/t.T/Chat',
  requestStream: true,
  responseStream: true,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
};

// A client that writes every 200 ms and reports its answers and any error to the parent.
const CLIENT = `
import { createRequire } from 'node:module';
const grpc = createRequire(process.env.GRPC_FROM)('@grpc/grpc-js');
const raw = (b) => b;
const def = { chat: { path: '/t.T/Chat', requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } };
const Client = grpc.makeGenericClientConstructor(def, 'T');
const call = new Client(process.argv[2], grpc.credentials.createInsecure()).chat();
let answers = 0;
call.on('data', () => { answers++; process.send({ answers }); });
call.on('error', (e) => process.send({ error: e.code + ' ' + e.details }));
setInterval(() => call.write(Buffer.from('ping')), 200);
`;

let server: Server | undefined;
let child: ChildProcess | undefined;
let dir: string | undefined;
afterEach(() => {
  child?.kill();
  server?.forceShutdown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** One turn of the event loop that computes for `ms` (a coordinator building many desired sets). */
function busyTurn(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

describe('the gRPC server options', () => {
  it('keep a connection through two 6 s event-loop turns while its pings are answered late', async () => {
    server = new Server({ ...GRPC_SERVER_OPTIONS, 'grpc.keepalive_time_ms': 1000 });
    let closed = false;
    server.addService(
      { chat },
      {
        chat: (call: ServerDuplexStream<Buffer, Buffer>) => {
          call.on('data', () => call.write(Buffer.from('pong')));
          call.on('error', () => (closed = true));
          call.on('cancelled', () => (closed = true));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server?.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-keepalive-'));
    const script = path.join(dir, 'client.mjs');
    fs.writeFileSync(script, CLIENT);
    const seen: { answers: number; error?: string } = { answers: 0 };
    child = fork(script, [`127.0.0.1:${port}`], { env: { ...process.env, GRPC_FROM: import.meta.filename } });
    child.on('message', (m: { answers?: number; error?: string }) => {
      if (m.answers !== undefined) seen.answers = m.answers;
      if (m.error !== undefined) seen.error = m.error;
    });
    await eventually(() => seen.answers >= 3, 30_000, 'the client answered');
    for (let turn = 0; turn < 2; turn++) {
      busyTurn(6000);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const before = seen.answers;
    await eventually(() => seen.answers >= before + 5 || seen.error !== undefined, 10_000, 'answers after the busy turns');
    expect(seen.error).toBeUndefined();
    expect(closed).toBe(false);
  }, 60_000);
});
