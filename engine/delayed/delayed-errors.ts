// Coded refusals of a delayed publish; front ends map them to their reason codes (MQTT 5.0:
// 0x90 for a malformed $delayed topic, 0x97 quota exceeded for the two bounds, 0x87 not authorized).
import { defineError } from '../../base/index.js';

export const DelayedErrors = {
  invalidTopic: defineError({
    code: 'SL_DELAYED_INVALID_TOPIC',
    meaning: 'A publish to `$delayed/...` does not have the form `$delayed/{seconds}/{topic}` (seconds: digits only; a target topic is required and cannot be another `$delayed/` topic).',
    fix: 'Publish to `$delayed/SECONDS/TOPIC`, e.g. `$delayed/30/alerts/door`.',
    message: (detail: string) => `invalid delayed publish: ${detail}`,
  }),
  delayTooLong: defineError({
    code: 'SL_DELAYED_TOO_LONG',
    meaning: 'A delayed publish asked for a delay longer than `max-delay-seconds`.',
    fix: 'Use a shorter delay, or raise `max-delay-seconds`.',
    message: (seconds: number, max: number) => `a delay of ${seconds} s is more than max-delay-seconds (${max})`,
  }),
  full: defineError({
    code: 'SL_DELAYED_FULL',
    meaning: 'The broker already holds `max-delayed-messages` delayed messages that are not yet due.',
    fix: 'Retry after some are delivered, or raise `max-delayed-messages`.',
    message: (max: number) => `the broker already holds max-delayed-messages (${max}) delayed messages`,
  }),
  notAuthorized: defineError({
    code: 'SL_DELAYED_NOT_AUTHORIZED',
    meaning: "A delayed publish names a target topic the publisher's access rules do not let it publish to.",
    fix: 'Grant the client publish access to the target topic (as well as to the `$delayed/...` topic).',
    message: (topic: string) => `not authorized to publish to the delayed target ${JSON.stringify(topic)}`,
  }),
};
