// The relay at its socket seam: a scripted server stream (protocol 3.2 sized key, messages split
// across reads, bytes after ReadyForQuery) over real loopback sockets.
import net from 'node:net';
import {
  decodeBackendMessage,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeParameterStatus,
  encodeReadyForQuery,
  MessageFramer,
} from '@pgs/wire-protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { CancelKeys } from './cancel-keys.js';
import { relayStartup } from './startup-relay.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** Two connected socket pairs: [routerSide, peerSide]. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const other = await accepted;
  server.close();
  cleanups.push(() => {
    client.destroy();
    other.destroy();
  });
  return [client, other];
}

describe('relayStartup', () => {
  it('swaps a 32-byte BackendKeyData, keeps every other message, and hands over bytes after ReadyForQuery', async () => {
    const [routerToServer, server] = await socketPair();
    const [routerToClient, client] = await socketPair();
    const keys = new CancelKeys({ routerId: 'r1', secret: Buffer.from('s') });
    const realKey = Buffer.alloc(32, 0xab);
    const relay = relayStartup(routerToClient, routerToServer, (processId, secretKey) =>
      keys.issue({ processId, secretKey, host: '127.0.0.1', port: 1, tenantId: 't' }),
    );
    const stream = Buffer.concat([
      encodeAuthentication(0),
      encodeParameterStatus('server_version', '18.0'),
      encodeBackendKeyData(777, realKey),
      encodeReadyForQuery('I'),
      Buffer.from('T-after'),
    ]);
    // Byte by byte: every message straddles reads.
    for (let i = 0; i < stream.length; i += 7) server.write(stream.subarray(i, i + 7));
    const outcome = await relay;
    expect(outcome.kind).toBe('ready');
    if (outcome.kind !== 'ready') return;
    expect(outcome.key?.secretKey).toHaveLength(32);
    // What Link.open does: leftover first, then the pipe; the client must see the server's bytes in order.
    const gotByClient: Buffer[] = [];
    client.on('data', (d: Buffer) => gotByClient.push(d));
    routerToClient.write(outcome.leftover);
    routerToServer.pipe(routerToClient);
    const expectedLength = stream.length - realKey.length + outcome.key!.secretKey.length;
    await new Promise<void>((resolve) => {
      const check = (): void => (Buffer.concat(gotByClient).length >= expectedLength ? resolve() : void setTimeout(check, 10));
      check();
    });
    const all = Buffer.concat(gotByClient);
    const framer = new MessageFramer();
    const frames = framer.push(all, (f) => f.type === 0x5a).map(decodeBackendMessage);
    expect(frames.map((f) => f.kind)).toEqual(['authentication', 'parameter-status', 'backend-key-data', 'ready-for-query']);
    expect(framer.takeRemainder().toString()).toBe('T-after');
    const key = frames[2];
    if (key?.kind !== 'backend-key-data') throw new Error('no key');
    expect(key.processId).toBe(outcome.key?.processId);
    expect(key.secretKey.equals(realKey)).toBe(false);
    expect(keys.resolve(key.processId, key.secretKey)?.secretKey).toEqual(realKey);
  });

  it('a malformed server message fails the relay with a protocol error instead of throwing out of the socket handler', async () => {
    const [routerToServer, server] = await socketPair();
    const [routerToClient] = await socketPair();
    const relay = relayStartup(routerToClient, routerToServer, () => ({ processId: 1, secretKey: Buffer.alloc(4) }));
    // BackendKeyData whose body is 2 bytes: too short for a process id and a key.
    server.write(Buffer.concat([encodeAuthentication(0), Buffer.from([0x4b, 0, 0, 0, 6, 1, 2])]));
    await expect(relay).rejects.toMatchObject({ code: '08P01' });
  });
});
