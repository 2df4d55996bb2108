// The MQTT data shards as one Kafka topic (`--kafka-mqtt-topic`, default `mqtt`): partition i is
// data shard `mqtt.i`, offsets are the shard's, so Kafka clients read, seek and replay the MQTT
// traffic itself, with no bridge process and no copy. Producing to it publishes MQTT messages
// through the broker (records mqtt-records.ts), so MQTT subscribers get them. The node's access
// policy applies to Kafka clients as to MQTT ones: a record whose MQTT topic the client may not
// read is withheld, and producing to a topic it may not publish to is refused. A withheld record
// (or a record that is no message) still takes its offset, as a record with no key, no value and
// the header `mqtt.withheld`: leaving it out could leave a fetch with nothing to return and no way
// on, since not every client skips past an empty batch (kafkajs does not).
import type { JournalRecord } from '../../../journal/index.js';
import type { AccessPolicy, ClientIdentity, Message } from '../../../engine/index.js';
import { KafkaErrorCode, type KafkaRecord } from '../codec/index.js';
import { kafkaRecordToMqtt, mqttRecordToKafka } from './mqtt-records.js';
import type { StoredKafkaRecord } from './records.js';

/** What the MQTT topic needs of the broker. */
export interface MqttTopicBroker {
  readonly dataShardNames: readonly string[];
  readonly access: AccessPolicy;
  publish(message: Message, stored?: (matched: boolean) => void): Promise<{ matched: boolean }>;
}

export interface ProduceOutcome {
  errorCode: number;
  errorMessage: string | null;
  recordErrors: Array<{ batchIndex: number; batchIndexErrorMessage: string | null }>;
}

const WITHHELD = { key: 'mqtt.withheld', value: Buffer.from('true') };

export class MqttTopic {
  constructor(
    readonly name: string,
    private readonly broker: MqttTopicBroker,
  ) {}

  get partitions(): number {
    return this.broker.dataShardNames.length;
  }

  shardOf(partition: number): string {
    return this.broker.dataShardNames[partition] as string;
  }

  /** A data-shard record as the client sees it. */
  read(record: JournalRecord, identity: ClientIdentity): StoredKafkaRecord {
    const mapped = mqttRecordToKafka(record);
    if (mapped !== undefined && this.broker.access.mayRead(identity, mapped.topic)) return mapped.record;
    return { offset: record.offset, timestamp: record.timestamp, key: null, value: null, headers: [WITHHELD] };
  }

  /**
   * Publishes each record as an MQTT message, in order; resolves once every one is durable. A
   * batch with one record that is no valid message, or that the client may not publish, is
   * refused whole, before anything is published.
   */
  async produce(records: readonly KafkaRecord[], identity: ClientIdentity, now: number): Promise<ProduceOutcome> {
    const messages: Message[] = [];
    for (const [batchIndex, record] of records.entries()) {
      const produced = kafkaRecordToMqtt(record, identity.clientId, now);
      if (!produced.ok) return refused(KafkaErrorCode.INVALID_RECORD, batchIndex, `record ${batchIndex}: ${produced.reason}`);
      if (!this.broker.access.mayPublish(identity, produced.message.topic)) {
        return refused(KafkaErrorCode.TOPIC_AUTHORIZATION_FAILED, batchIndex, `record ${batchIndex}: publishing to MQTT topic ${JSON.stringify(produced.message.topic)} is not allowed`);
      }
      messages.push(produced.message);
    }
    // Started in order (the broker queues each on its shard's appender at once), so records of
    // one MQTT topic keep their order; a publish that fails rejects before its `stored`.
    await Promise.all(messages.map((message) => new Promise<void>((resolve, reject) => {
      this.broker.publish(message, () => resolve()).catch(reject);
    })));
    return { errorCode: 0, errorMessage: null, recordErrors: [] };
  }
}

function refused(errorCode: number, batchIndex: number, message: string): ProduceOutcome {
  return { errorCode, errorMessage: message, recordErrors: [{ batchIndex, batchIndexErrorMessage: message }] };
}

/** Who a Kafka client is to the access policy: its SASL user (undefined: anonymous), its address, and its client id as `kafka:<client.id>`. */
export function kafkaIdentity(clientId: string | null, client?: { readonly username: string | undefined; readonly remoteAddress: string }): ClientIdentity {
  return { clientId: `kafka:${clientId ?? ''}`, username: client?.username, remoteAddress: client?.remoteAddress ?? '', protocol: 'kafka' };
}
