// A reference broker for `shardline bench mqtt`: Aedes (in-memory persistence and emitter) on
// 127.0.0.1. Usage: node scripts/aedes-server.mjs [PORT] (default 1884; 0 picks a free port).
// Prints {"pid":..,"port":..} as one JSON line once listening; SIGTERM or SIGINT closes the
// broker and the listener and exits 0.
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const requested = process.argv[2] === undefined ? 1884 : Number(process.argv[2]);
if (!Number.isInteger(requested) || requested < 0 || requested > 65535) {
  console.error(`usage: node scripts/aedes-server.mjs [PORT], got ${JSON.stringify(process.argv[2])}`);
  process.exit(2);
}

const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.on('error', (error) => {
  console.error(`aedes-server: ${error.message}`);
  process.exit(1);
});
server.listen(requested, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ pid: process.pid, port: server.address().port })}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  // Open client sockets would keep server.close waiting; broker.close ends them first.
  broker.close(() => server.close(() => process.exit(0)));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
