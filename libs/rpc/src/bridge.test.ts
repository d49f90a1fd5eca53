import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { EchoManyResponseSchema, EchoService } from '@pgs/proto/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, EncodedMessage, RpcError, addService, createClient, type Client } from './index.js';

/** One message encoded once, sent on every stream that asks for "shared". */
const SHARED = EncodedMessage.of(EchoManyResponseSchema, { text: 'shared', index: 42 });

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new RpcError(Code.CANCELLED, 'cancelled'));
    });
  });

describe('grpc-js bridge on a real server and client (127.0.0.1)', () => {
  let server: Server;
  let client: Client<typeof EchoService>;
  const streamCancelled: Array<boolean> = [];
  const ended: string[] = [];

  beforeAll(async () => {
    server = new Server();
    addService(
      server,
      EchoService,
      {
        async echo(req, ctx) {
          if (req.delayMs) await delay(req.delayMs, ctx.signal);
          if (req.failCode) throw new RpcError(req.failCode, `failed: ${req.text}`, { errorCode: 'ECHO_FAILED', details: { field: 'text' } });
          if (req.text === 'boom') throw new Error('secret internal detail');
          if (req.text === 'domain') throw new TypeError('mapped');
          return { text: `${req.text}!` };
        },
        async echoMany(req, stream, ctx) {
          if (req.text === 'shared') {
            for (let i = 0; i < req.count; i++) await stream.send(SHARED);
            return;
          }
          for (let i = 0; req.count === 0 || i < req.count; i++) {
            if (ctx.signal.aborted) {
              streamCancelled.push(true);
              return;
            }
            await stream.send({ text: req.text, index: i });
            if (req.intervalMs) await delay(req.intervalMs, ctx.signal).catch(() => undefined);
          }
        },
        async collect(requests) {
          const texts: string[] = [];
          for await (const r of requests) texts.push(r.text);
          return { texts };
        },
        async chat(requests, stream) {
          for await (const r of requests) await stream.send({ text: r.text.toUpperCase() });
        },
      },
      {
        mapError: (err) => (err instanceof TypeError ? new RpcError(Code.INVALID_ARGUMENT, err.message, { errorCode: 'BAD_TYPE' }) : undefined),
        onCallEnd: (info) => ended.push(`${info.method}:${Code[info.code]}`),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = createClient(EchoService, `127.0.0.1:${port}`, credentials.createInsecure());
    await client.waitForReady(5000);
  });

  afterAll(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  it('unary round trip', async () => {
    const res = await client.echo({ text: 'hi' });
    expect(res.text).toBe('hi!');
    expect(res.$typeName).toBe('pgs.testing.v1.EchoResponse');
  });

  it('unary error keeps status code, error code and details', async () => {
    const err = await client.echo({ text: 'x', failCode: Code.NOT_FOUND }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(Code.NOT_FOUND);
    expect((err as RpcError).errorCode).toBe('ECHO_FAILED');
    expect((err as RpcError).details).toEqual({ field: 'text' });
    expect((err as RpcError).message).toBe('failed: x');
  });

  it('unknown errors become INTERNAL without leaking the message; mapped ones use the mapper', async () => {
    const err = (await client.echo({ text: 'boom' }).catch((e: unknown) => e)) as RpcError;
    expect(err.code).toBe(Code.INTERNAL);
    expect(err.message).not.toContain('secret');
    const mapped = (await client.echo({ text: 'domain' }).catch((e: unknown) => e)) as RpcError;
    expect(mapped.code).toBe(Code.INVALID_ARGUMENT);
    expect(mapped.errorCode).toBe('BAD_TYPE');
  });

  it('deadline exceeded', async () => {
    const err = (await client.echo({ text: 'slow', delayMs: 2000 }, { timeoutMs: 100 }).catch((e: unknown) => e)) as RpcError;
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it('unary cancelled through an AbortSignal', async () => {
    const ac = new AbortController();
    const p = client.echo({ text: 'slow', delayMs: 2000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = (await p.catch((e: unknown) => e)) as RpcError;
    expect(err.code).toBe(Code.CANCELLED);
  });

  it('server streaming delivers every message in order', async () => {
    const got: number[] = [];
    for await (const m of client.echoMany({ text: 'a', count: 50 })) got.push(m.index);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('a message encoded once goes out as those bytes on every stream', async () => {
    const read = async (): Promise<Array<{ text: string; index: number }>> => {
      const got = [];
      for await (const m of client.echoMany({ text: 'shared', count: 3 })) got.push({ text: m.text, index: m.index });
      return got;
    };
    const [a, b] = await Promise.all([read(), read()]);
    expect(a).toEqual(Array.from({ length: 3 }, () => ({ text: 'shared', index: 42 })));
    expect(b).toEqual(a);
  });

  it('a cancelled server stream ends the iteration and the server sees the cancel', async () => {
    const stream = client.echoMany({ text: 'forever', count: 0, intervalMs: 10 });
    let n = 0;
    for await (const _m of stream) {
      if (++n === 5) stream.cancel();
    }
    expect(n).toBeGreaterThanOrEqual(5);
    const deadline = Date.now() + 3000;
    while (streamCancelled.length === 0 && Date.now() < deadline) await delay(10);
    expect(streamCancelled.length).toBe(1);
  });

  it('server stream hitting its deadline throws DEADLINE_EXCEEDED to the iterator', async () => {
    const stream = client.echoMany({ text: 'x', count: 0, intervalMs: 20 }, { timeoutMs: 150 });
    const err = await (async () => {
      for await (const _m of stream) {
        /* drain */
      }
    })().catch((e: unknown) => e);
    expect((err as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it('client streaming', async () => {
    async function* gen() {
      for (const t of ['a', 'b', 'c']) yield { text: t };
    }
    const res = await client.collect(gen());
    expect(res.texts).toEqual(['a', 'b', 'c']);
  });

  it('bidi streaming: send, receive, half-close', async () => {
    const chat = client.chat();
    const received: string[] = [];
    const reading = (async () => {
      for await (const m of chat) received.push(m.text);
    })();
    for (const t of ['one', 'two', 'three']) await chat.send({ text: t });
    chat.end();
    await reading;
    expect(received).toEqual(['ONE', 'TWO', 'THREE']);
  });

  it('bidi cancelled by the client ends quietly', async () => {
    const chat = client.chat();
    await chat.send({ text: 'x' });
    const first = await chat[Symbol.asyncIterator]().next();
    expect(first.value?.text).toBe('X');
    chat.cancel();
    const rest: string[] = [];
    for await (const m of chat) rest.push(m.text);
    expect(rest).toEqual([]);
  });

  it('reports every finished call with its status', () => {
    expect(ended).toContain('pgs.testing.v1.EchoService/Echo:OK');
    expect(ended).toContain('pgs.testing.v1.EchoService/Echo:NOT_FOUND');
  });
});
