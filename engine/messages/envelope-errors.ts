// Coded errors of the record envelope (engine/messages/envelope.ts): a record the envelope
// codec cannot read, or a field it cannot write.
import { defineError } from '../../base/index.js';

export const EnvelopeErrors = {
  unsupportedVersion: defineError({
    code: 'SL_ENVELOPE_UNSUPPORTED_VERSION',
    meaning: 'A message record carries a record envelope version (its `v` header) this Shardline does not know: a newer release wrote it.',
    fix: 'Run a release at least as new as the one that wrote the data directory (docs/journal-format.md, "Record envelope").',
    message: (version: number, known: number) => `record envelope version ${version} is not supported (this release reads up to ${known})`,
  }),
  malformed: defineError({
    code: 'SL_ENVELOPE_MALFORMED',
    meaning: 'A message record has an envelope header whose value does not decode (wrong length, bad flags, a count past its bytes), or a message has a field the envelope cannot hold.',
    fix: 'A record the journal verified but the envelope cannot read was written wrongly: report it with `shardline shard dump` of the record. For a field out of range, send a value within it.',
    message: (header: string, detail: string) => `record envelope header ${JSON.stringify(header)}: ${detail}`,
  }),
};
