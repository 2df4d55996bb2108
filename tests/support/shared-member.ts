// A shared subscription member in a process of its own, so a test can kill it with SIGKILL
// mid-stream (tests/mqtt-shared.test.ts). Connects with mqtt.js, subscribes, and writes one JSON
// line per event on stdout: {"ready":true} after the SUBACK, {"payload":"..."} per message.
// mqtt.js emits a QoS 1 message before it sends the PUBACK and a QoS 2 message when the PUBREL
// arrives, and stdout to a pipe is synchronous on Linux, so a line is out before the broker can
// count the message as acknowledged by this member.
// Usage: node --import tsx tests/support/shared-member.ts URL VERSION CLIENT_ID FILTER QOS
import mqtt from 'mqtt';

const [url, version, clientId, filter, qos] = process.argv.slice(2) as [string, string, string, string, string];
const client = mqtt.connect(url, { protocolVersion: Number(version) as 4 | 5, clientId, reconnectPeriod: 0, clean: true, resubscribe: false });
client.on('message', (_topic, payload) => {
  process.stdout.write(`${JSON.stringify({ payload: payload.toString() })}\n`);
});
client.on('error', (error) => {
  process.stdout.write(`${JSON.stringify({ error: error.message })}\n`);
});
client.on('close', () => process.exit(0));
client.once('connect', () => {
  client.subscribe(filter, { qos: Number(qos) as 0 | 1 | 2 }, (error, granted) => {
    process.stdout.write(`${JSON.stringify(error ? { error: error.message } : { ready: true, granted: granted?.map((g) => g.qos) })}\n`);
  });
});
