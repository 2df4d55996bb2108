// The simulator's replicated state machine: a key-value map with write and compare-and-set,
// plus a session table that makes retried commands idempotent.
//
// A client numbers its commands 1, 2, 3... and retries one with the same number until it gets
// an answer, possibly through another node, so one command may be committed several times. The
// session table keeps, per client, the last sequence number applied and its result: a repeat
// returns that result without applying again (Raft thesis §6.3). A client has at most one
// command outstanding, so anything below the last number is a stale repeat and is ignored.
//
// `executed` lists the command ids that took effect, in order; the no-lost-write checker reads it.
// Everything here is plain data so a snapshot is its JSON.

export type KvCommand =
  | { client: number; seq: number; op: 'write'; key: string; value: string }
  | { client: number; seq: number; op: 'cas'; key: string; expected: string | null; value: string };

/** 'ok' for a write, true/false for a compare-and-set; null for a stale repeat. */
export type KvResult = 'ok' | boolean | null;

interface KvData {
  values: Record<string, string>;
  sessions: Record<string, { seq: number; result: KvResult }>;
  executed: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const commandId = (client: number, seq: number): string => `c${client}#${seq}`;

export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

export class KvStateMachine {
  private data: KvData;

  constructor(snapshot?: Uint8Array) {
    this.data = snapshot === undefined || snapshot.byteLength === 0 ? { values: {}, sessions: {}, executed: [] } : (JSON.parse(decoder.decode(snapshot)) as KvData);
  }

  read(key: string): string | null {
    return this.data.values[key] ?? null;
  }

  get executed(): readonly string[] {
    return this.data.executed;
  }

  apply(command: KvCommand): KvResult {
    const session = this.data.sessions[command.client];
    if (session !== undefined && command.seq <= session.seq) return command.seq === session.seq ? session.result : null;
    let result: KvResult;
    if (command.op === 'write') {
      this.data.values[command.key] = command.value;
      result = 'ok';
    } else {
      result = (this.data.values[command.key] ?? null) === command.expected;
      if (result) this.data.values[command.key] = command.value;
    }
    this.data.sessions[command.client] = { seq: command.seq, result };
    this.data.executed.push(commandId(command.client, command.seq));
    return result;
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.data));
  }
}
