// MQTT front-end error registry (SL_MQTT_*): failures of the listener itself. Protocol
// violations by clients are not errors of this kind: they are answered with MQTT reason codes.
import { defineError } from '../../base/index.js';

export const MqttErrors = {
  listenFailed: defineError({
    code: 'SL_MQTT_LISTEN_FAILED',
    meaning: 'The MQTT listener could not bind its address: the port is in use (another broker or a second Shardline), the address is not on this machine, or the port needs privileges.',
    fix: 'Stop whatever holds the port or pick another with --mqtt-port (0 picks a free one); check --host.',
    message: (address: string, reason: string) => `cannot listen for MQTT on ${address}: ${reason}`,
  }),
  tlsSetup: defineError({
    code: 'SL_MQTT_TLS_SETUP',
    meaning: 'A TLS listener (MQTTS, WSS, AMQPS or Kafka over TLS) cannot start: the certificate, key or CA file cannot be read, is not PEM, the key does not match the certificate (or needs a passphrase), or client authentication is asked for without a CA.',
    fix: 'Check tls-cert, tls-key and tls-ca (PEM files readable by the broker, an unencrypted key that belongs to the certificate); tls-client-auth optional or required needs tls-ca.',
    message: (detail: string) => detail,
  }),
};
