// What each answered Kafka request reports to whoever watches (the node's metrics): its API, how
// long the node took, and the first error code its response carries. Kafka answers most
// failures inside a successful response, per topic or partition, so "errors" are read out of the
// response body rather than from whether the handler threw.
import { kafkaErrorName, SUPPORTED_APIS, type KafkaStruct } from '../codec/index.js';

export interface KafkaRequestEvent {
  /** The API's name (Produce, Fetch, ...), or `api-N` for one the codec does not name. */
  api: string;
  /** From the request's arrival at the handler to its answer (or to the handler's failure). */
  seconds: number;
  /** The first error code of the response by name (NONE: none); HANDLER_FAILED: the handler threw and the connection closed. */
  error: string;
}

export type KafkaRequestListener = (event: KafkaRequestEvent) => void;

export function apiName(apiKey: number): string {
  return SUPPORTED_APIS.get(apiKey)?.name ?? `api-${apiKey}`;
}

/** The first non-zero `errorCode` in a response body, depth first in field order; 0 when there is none. */
export function firstErrorCode(body: KafkaStruct | undefined): number {
  if (body === undefined) return 0;
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i -= 1) stack.push(value[i]);
    } else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
      const struct = value as KafkaStruct;
      const code = struct.errorCode;
      if (typeof code === 'number' && code !== 0) return code;
      const fields = Object.values(struct);
      for (let i = fields.length - 1; i >= 0; i -= 1) stack.push(fields[i]);
    }
  }
  return 0;
}

export function errorLabel(code: number): string {
  return code === 0 ? 'NONE' : kafkaErrorName(code);
}
