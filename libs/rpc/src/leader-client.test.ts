import net from 'node:net';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { EchoService } from '@pgs/proto/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, NOT_LEADER, RpcError, addService, createLeaderClient, splitAddresses } from './index.js';

/** A server that either answers (the leader) or refuses naming `leader()` (a follower). */
async function start(role: { leads: boolean; leader: () => string }, at = '127.0.0.1:0'): Promise<{ server: Server; address: string }> {
  const server = new Server();
  const refuse = (): never => {
    throw new RpcError(Code.UNAVAILABLE, 'not the leader', { errorCode: NOT_LEADER, details: { leader: role.leader() } });
  };
  addService(server, EchoService, {
    async echo(req) {
      if (!role.leads) refuse();
      if (req.failCode) throw new RpcError(req.failCode, 'asked to fail');
      return { text: `${req.text}!` };
    },
    async echoMany(req, stream) {
      if (!role.leads) refuse();
      await stream.send({ text: req.text, index: 0 });
    },
    async collect() {
      return { texts: [] };
    },
    async chat() {
      refuse();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(at, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

describe('leader client over several addresses', () => {
  const roles = [
    { leads: false, leader: () => '' },
    { leads: true, leader: () => '' },
  ];
  const servers: Array<{ server: Server; address: string }> = [];
  let gone = '';

  beforeAll(async () => {
    for (const r of roles) servers.push(await start(r));
    for (const r of roles) r.leader = () => servers[roles.findIndex((x) => x.leads)]!.address;
    // An address nobody listens on (a coordinator that died).
    const dead = await start({ leads: true, leader: () => '' });
    gone = dead.address;
    dead.server.forceShutdown();
  });
  afterAll(() => {
    for (const s of servers) s.server.forceShutdown();
  });

  it('reaches an address that was down on the first call once it serves again (no reconnect backoff carried over)', async () => {
    const client = createLeaderClient(EchoService, [gone], credentials.createInsecure(), {}, { rounds: 1 });
    // Refused connects: a plain channel would now wait out its reconnect backoff (a second or more).
    for (let i = 0; i < 3; i++) await expect(client.echo({ text: 'x' })).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    const back = await start({ leads: true, leader: () => '' }, gone);
    try {
      await expect(client.echo({ text: 'back' })).resolves.toMatchObject({ text: 'back!' });
    } finally {
      client.close();
      back.server.forceShutdown();
    }
  });

  it('moves on from an address that swallows the connection (a partitioned coordinator) once the call times out unsent', async () => {
    // Accepts TCP and never answers, as a host whose packets vanish: the call waits for a connection that never becomes ready.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentAddress = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const leaderAddress = servers[1]!.address;
    const client = createLeaderClient(EchoService, [silentAddress, leaderAddress], credentials.createInsecure(), {}, { rounds: 1 });
    try {
      await expect(client.echo({ text: 'x' }, { timeoutMs: 500 })).resolves.toMatchObject({ text: 'x!' });
      expect(client.current()).toBe(leaderAddress);
    } finally {
      client.close();
      silent.close();
    }
  });

  it('splits a comma-separated list, dropping blanks', () => {
    expect(splitAddresses(' a:1, b:2 ,,c:3')).toEqual(['a:1', 'b:2', 'c:3']);
  });

  it("follows a follower's redirect and a dead address to the leader, then follows the leader when it moves", async () => {
    const [follower, leader] = [servers[0]!, servers[1]!];
    const client = createLeaderClient(EchoService, [gone, follower.address, leader.address], credentials.createInsecure(), {}, { roundPauseMs: 20 });
    expect((await client.echo({ text: 'hi' })).text).toBe('hi!');
    expect(client.current()).toBe(leader.address);

    // Leadership moves to the other server: the next call is refused there and sent over.
    roles[0]!.leads = true;
    roles[1]!.leads = false;
    expect((await client.echo({ text: 'again' })).text).toBe('again!');
    expect(client.current()).toBe(follower.address);

    // A stream refused by a follower fails to its caller, and the next one opens at the leader.
    roles[0]!.leads = false;
    roles[1]!.leads = true;
    await expect(
      (async () => {
        for await (const _ of client.echoMany({ text: 's', count: 1 })) void _;
      })(),
    ).rejects.toMatchObject({ errorCode: NOT_LEADER });
    expect(client.current()).toBe(leader.address);
    const got: string[] = [];
    for await (const m of client.echoMany({ text: 's', count: 1 })) got.push(m.text);
    expect(got).toEqual(['s']);
    client.close();
  });

  it('gives up after its rounds with the last error, and passes other errors through at once', async () => {
    const client = createLeaderClient(EchoService, [gone], credentials.createInsecure(), {}, { rounds: 2, roundPauseMs: 10 });
    await expect(client.echo({ text: 'x' })).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    client.close();
    const leader = createLeaderClient(EchoService, [servers[1]!.address], credentials.createInsecure());
    await expect(leader.echo({ text: 'x', failCode: Code.NOT_FOUND })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    leader.close();
  });
});
