// AMQP front-end error registry (SL_AMQP_*): failures of the listener itself. Protocol violations
// by clients are not errors of this kind: they are answered with AMQP reply codes
// (connection.close / channel.close, docs/amqp.md).
import { defineError } from '../../base/index.js';

export const AmqpErrors = {
  listenFailed: defineError({
    code: 'SL_AMQP_LISTEN_FAILED',
    meaning: 'The AMQP listener could not bind its address: the port is in use (a RabbitMQ or a second Shardline), the address is not on this machine, or the port needs privileges.',
    fix: 'Stop whatever holds the port or pick another with --amqp-port (0 picks a free one); check --host.',
    message: (address: string, reason: string) => `cannot listen for AMQP on ${address}: ${reason}`,
  }),
};
