// Opens N idle MQTT connections to 127.0.0.1:PORT (64 at a time), prints one JSON line with the
// connect rate once all have their CONNACK, and holds them until SIGTERM. Used by
// scripts/idle-memory.sh. Usage: node scripts/idle-clients.mjs PORT N 4|5 clean|persistent [ID-PREFIX]
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import mqttPacket from 'mqtt-packet';

const [port, count, version, mode, prefix = 'idle'] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5], process.argv[6]];
if (!(port > 0) || !(count > 0) || (version !== 4 && version !== 5) || (mode !== 'clean' && mode !== 'persistent')) {
  process.stderr.write('usage: node scripts/idle-clients.mjs PORT N 4|5 clean|persistent [ID-PREFIX]\n');
  process.exit(2);
}
const persistent = mode === 'persistent';
const sockets = [];
let next = 0;
const started = performance.now();

function open(index) {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  const connect = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: !persistent, clientId: `${prefix}-${index}`, keepalive: 600, ...(version === 5 ? { properties: { sessionExpiryInterval: persistent ? 3600 : 0 } } : {}) };
  socket.write(mqttPacket.generate(connect, { protocolVersion: version }));
  return new Promise((resolve, reject) => {
    socket.once('data', (data) => (data[0] === 0x20 ? resolve() : reject(new Error(`client ${index}: not a CONNACK`))));
    socket.once('error', reject);
  });
}

await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (next < count) {
      const index = next;
      next += 1;
      await open(index);
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ ready: count, seconds, perSecond: count / seconds })}\n`);
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setInterval(() => undefined, 1 << 30);
