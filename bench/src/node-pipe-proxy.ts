// The smallest TCP proxy Node.js can run: accept, connect, pipe both ways. The router benchmark
// runs it beside the router as the floor of the runtime: what a connection costs in Node before
// any PostgreSQL work (startup parsing, routing, key swap, logs, metrics).
//
//   node --import tsx bench/src/node-pipe-proxy.ts <listen port> <backend host> <backend port>
import net from 'node:net';

const [listenPort, host, port] = [Number(process.argv[2]), process.argv[3] ?? '127.0.0.1', Number(process.argv[4])];
net
  .createServer({ noDelay: true }, (client) => {
    const server = net.connect({ host, port, noDelay: true });
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.pipe(server);
    server.pipe(client);
  })
  .listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
