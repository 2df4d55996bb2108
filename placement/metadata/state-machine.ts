// The placement state machine: apply(state, command) → new state, result and changes.
//
// Pure: no clock, no randomness, no I/O. Every replica applies the same committed entries in
// the same order and must reach the same state, so time comes only from the command's `at`
// (stamped by the proposer), never from the replica applying it.
//
// Revision: every command that reaches the state machine for the first time advances the
// revision by exactly one, whether it succeeds or is refused; a retry (see below) does not.
// So the revision counts distinct commands, a refusal still has a place in the history, and a
// client can order its answer against a watch stream. A refused command changes nothing else
// and yields no changes; watchers see a gap in revisions, which they must tolerate anyway.
//
// Idempotence (Raft thesis §6.3, as in placement/sim/kv-state-machine.ts): a client numbers
// its commands 1, 2, 3... with at most one outstanding, and retries with the same number. The
// session table keeps each client's last sequence and result; the same sequence again returns
// that result unapplied, a lower one is refused as stale-sequence (its answer is long gone and
// its client has moved on). Sessions are never expired yet.
//
// Fencing: a shard's leader changes only by set-shard-leader with the current epoch as
// expectedEpoch; the epoch becomes expectedEpoch + 1. Two controllers racing on one epoch
// cannot both win, and a journal node can refuse writes carrying an epoch below the one it has
// seen. Shards are never deleted, so an epoch never restarts.
//
// Leases: register-node and heartbeat set the lease to at + leaseMs (never backwards). Nothing
// expires by itself: the leader reads expiredNodes(state, now) and proposes expire-node, which
// is refused as lease-live if a heartbeat committed in between moved the lease past `at`.
import type { PlacementCommand } from './command.js';
import type { Change, CommandResult, NodeRecord, PlacementState, RefusalCode, ShardRecord } from './types.js';

export interface ApplyOutput {
  readonly state: PlacementState;
  readonly result: CommandResult;
  /** For watchers, in order; empty for a refusal or a retry. */
  readonly changes: readonly Change[];
  /** True when this was a retry of a command already applied (or an older one). */
  readonly duplicate: boolean;
}

class Refusal {
  constructor(
    readonly code: RefusalCode,
    readonly detail: string,
  ) {}
}

type Effect = { readonly state: PlacementState; readonly changes: readonly Change[]; readonly leaderEpoch?: number } | Refusal;

export function apply(state: PlacementState, command: PlacementCommand): ApplyOutput {
  const session = state.sessions.get(command.clientId);
  if (session !== undefined && command.sequence <= session.sequence) {
    const result: CommandResult =
      command.sequence === session.sequence
        ? session.result
        : { status: 'refused', revision: state.revision, code: 'stale-sequence', detail: `client ${command.clientId} is at sequence ${session.sequence}` };
    return { state, result, changes: [], duplicate: true };
  }
  const revision = state.revision + 1;
  const effect = execute(state, command, revision);
  const result: CommandResult =
    effect instanceof Refusal
      ? { status: 'refused', revision, code: effect.code, detail: effect.detail }
      : effect.leaderEpoch === undefined
        ? { status: 'ok', revision }
        : { status: 'ok', revision, leaderEpoch: effect.leaderEpoch };
  const base = effect instanceof Refusal ? state : effect.state;
  const sessions = new Map(state.sessions).set(command.clientId, { sequence: command.sequence, result });
  return { state: { ...base, revision, sessions }, result, changes: effect instanceof Refusal ? [] : effect.changes, duplicate: false };
}

/** Nodes whose lease ran out at `now` (the leader's clock), sorted by id: candidates for expire-node. */
export function expiredNodes(state: PlacementState, now: number): string[] {
  return [...state.nodes.values()]
    .filter((node) => node.leaseExpiresAt <= now)
    .map((node) => node.id)
    .sort();
}

function withEntry<V>(map: ReadonlyMap<string, V>, key: string, value: V | undefined): Map<string, V> {
  const copy = new Map(map);
  if (value === undefined) copy.delete(key);
  else copy.set(key, value);
  return copy;
}

function duplicateOf(list: readonly string[]): string | undefined {
  return list.find((item, i) => list.indexOf(item) !== i);
}

function checkReplicas(state: PlacementState, replicas: readonly string[]): Refusal | undefined {
  if (replicas.length === 0) return new Refusal('invalid', 'a replica set needs at least one node');
  const repeated = duplicateOf(replicas);
  if (repeated !== undefined) return new Refusal('invalid', `node ${repeated} is listed twice`);
  const unknown = replicas.find((id) => !state.nodes.has(id));
  if (unknown !== undefined) return new Refusal('unknown-node', `node ${unknown} is not registered`);
  return undefined;
}

/**
 * What a replica-set change may be (docs/replication.md, "Changing a replica set"): another set,
 * of journal nodes, at most 5, keeping enough old replicas that any majority of the new set drawn
 * from them meets every majority of the old one. New replicas do not vote until they have copied
 * the shard in the new set, so the first elections under the new set count old replicas only.
 */
function checkReassign(state: PlacementState, shard: ShardRecord, replicas: readonly string[]): Refusal | undefined {
  if (replicas.length > 5) return new Refusal('invalid', `a replica set has at most 5 nodes, got ${replicas.length}`);
  if (replicas.length === shard.replicas.length && replicas.every((id, i) => shard.replicas[i] === id)) return new Refusal('invalid', `shard ${shard.name} already has the replicas ${replicas.join(',')}`);
  const notJournal = replicas.find((id) => !shard.replicas.includes(id) && !(state.nodes.get(id)?.roles.includes('journal') ?? false));
  if (notJournal !== undefined) return new Refusal('invalid', `node ${notJournal} is not a journal node`);
  const kept = replicas.filter((id) => shard.replicas.includes(id)).length;
  const newMajority = Math.floor(replicas.length / 2) + 1;
  const oldMajority = Math.floor(shard.replicas.length / 2) + 1;
  if (kept < newMajority || newMajority + oldMajority <= shard.replicas.length) {
    return new Refusal('invalid', `moving from ${shard.replicas.join(',')} to ${replicas.join(',')} keeps ${kept} replica(s); a change must keep a majority of the new set and more than half of the old one (move one replica at a time)`);
  }
  return undefined;
}

function execute(state: PlacementState, command: PlacementCommand, revision: number): Effect {
  const change = (kind: Change['kind'], key: string, op: Change['op'] = 'put'): Change[] => [{ revision, kind, key, op }];
  switch (command.type) {
    case 'register-node': {
      const roles = [...command.roles].sort();
      if (roles.length === 0) return new Refusal('invalid', 'a node needs at least one role');
      if (duplicateOf(roles) !== undefined) return new Refusal('invalid', 'a role is listed twice');
      const addressed = Object.keys(command.addresses).sort();
      if (addressed.length !== roles.length || addressed.some((role, i) => role !== roles[i])) {
        return new Refusal('invalid', 'give exactly one address per role');
      }
      const endpoints = Object.entries(command.endpoints ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
      // Client endpoints are where a broker's protocols are reached; a node without one serves none.
      if (endpoints.length > 0 && !roles.includes('broker')) return new Refusal('invalid', 'only a broker node has client endpoints');
      // Registering again (a restarted node) updates roles, addresses and endpoints and keeps registeredAt.
      const existing = state.nodes.get(command.nodeId);
      const addresses = Object.fromEntries(roles.map((role) => [role, command.addresses[role]]));
      const node: NodeRecord = {
        id: command.nodeId,
        roles,
        addresses,
        ...(endpoints.length === 0 ? {} : { endpoints: Object.fromEntries(endpoints) }),
        registeredAt: existing?.registeredAt ?? command.at,
        leaseExpiresAt: Math.max(existing?.leaseExpiresAt ?? 0, command.at + command.leaseMs),
      };
      return { state: { ...state, nodes: withEntry(state.nodes, node.id, node) }, changes: change('node', node.id) };
    }
    case 'heartbeat': {
      const node = state.nodes.get(command.nodeId);
      if (node === undefined) return new Refusal('unknown-node', `node ${command.nodeId} is not registered`);
      // A heartbeat delayed behind a later one must not shorten the lease.
      const leaseExpiresAt = Math.max(node.leaseExpiresAt, command.at + command.leaseMs);
      return { state: { ...state, nodes: withEntry(state.nodes, node.id, { ...node, leaseExpiresAt }) }, changes: change('lease', node.id) };
    }
    case 'deregister-node':
    case 'expire-node': {
      const node = state.nodes.get(command.nodeId);
      if (node === undefined) return new Refusal('unknown-node', `node ${command.nodeId} is not registered`);
      if (command.type === 'expire-node' && node.leaseExpiresAt > command.at) {
        return new Refusal('lease-live', `node ${node.id}'s lease runs to ${node.leaseExpiresAt}, after ${command.at}`);
      }
      // Shards that list the node keep it: moving them is the controller's next decision.
      return { state: { ...state, nodes: withEntry(state.nodes, node.id, undefined) }, changes: change('node', node.id, 'delete') };
    }
    case 'create-shard': {
      if (state.shards.has(command.shard)) return new Refusal('shard-exists', `shard ${command.shard} exists`);
      const refused = checkReplicas(state, command.replicas);
      if (refused !== undefined) return refused;
      const shard: ShardRecord = { name: command.shard, replicas: [...command.replicas], leader: null, leaderEpoch: 0, state: 'active' };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, shard) }, changes: change('shard', shard.name) };
    }
    case 'set-shard-leader': {
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      if (command.expectedEpoch !== shard.leaderEpoch) {
        return new Refusal('stale-epoch', `shard ${shard.name} is at epoch ${shard.leaderEpoch}, not ${command.expectedEpoch}`);
      }
      if (command.leader !== null && !shard.replicas.includes(command.leader)) {
        return new Refusal('not-a-replica', `node ${command.leader} is not a replica of ${shard.name}`);
      }
      if (command.leader !== null && !state.nodes.has(command.leader)) return new Refusal('unknown-node', `node ${command.leader} is not registered`);
      const leaderEpoch = command.expectedEpoch + 1;
      const next: ShardRecord = { ...shard, leader: command.leader, leaderEpoch };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name), leaderEpoch };
    }
    case 'record-shard-leader': {
      // The second half of an election (shard-model/controller): set-shard-leader with a null
      // leader reserved `epoch` for one controller; only the leader it chose from the replicas'
      // answers may be written into it, once. So an epoch never gets two leaders, however many
      // controllers (a deposed placement leader still running) race.
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      if (command.epoch !== shard.leaderEpoch) return new Refusal('stale-epoch', `shard ${shard.name} is at epoch ${shard.leaderEpoch}, not ${command.epoch}`);
      if (shard.leader !== null) return new Refusal('stale-epoch', `shard ${shard.name}'s epoch ${shard.leaderEpoch} has its leader (${shard.leader}) already`);
      if (!shard.replicas.includes(command.leader)) return new Refusal('not-a-replica', `node ${command.leader} is not a replica of ${shard.name}`);
      if (!state.nodes.has(command.leader)) return new Refusal('unknown-node', `node ${command.leader} is not registered`);
      const next: ShardRecord = { ...shard, leader: command.leader };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name), leaderEpoch: shard.leaderEpoch };
    }
    case 'set-replicas': {
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      const refused = checkReplicas(state, command.replicas);
      if (refused !== undefined) return refused;
      // Dropping the leader here would leave a leader outside its replica set with a live
      // epoch; the controller must first move or clear the leader (which bumps the epoch).
      if (shard.leader !== null && !command.replicas.includes(shard.leader)) {
        return new Refusal('leader-not-in-replicas', `shard ${shard.name}'s leader ${shard.leader} must stay a replica`);
      }
      const next: ShardRecord = { ...shard, replicas: [...command.replicas] };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name) };
    }
    case 'begin-reassign': {
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      if (command.expectedEpoch !== shard.leaderEpoch) return new Refusal('stale-epoch', `shard ${shard.name} is at epoch ${shard.leaderEpoch}, not ${command.expectedEpoch}`);
      if (shard.target !== undefined) return new Refusal('change-in-progress', `shard ${shard.name} is already moving to ${shard.target.join(',')}`);
      const refused = checkReplicas(state, command.replicas) ?? checkReassign(state, shard, command.replicas);
      if (refused !== undefined) return refused;
      const next: ShardRecord = { ...shard, state: 'reassigning', target: [...command.replicas] };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name) };
    }
    case 'cancel-reassign': {
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      if (shard.target === undefined) return new Refusal('invalid', `shard ${shard.name} has no change in progress`);
      const { target: _dropped, ...rest } = shard;
      const next: ShardRecord = { ...rest, state: 'active' };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name) };
    }
    case 'switch-replicas': {
      // The second half of a change: the target becomes the replica set in a new epoch with no
      // leader yet, which the controller then elects among the target's voters (as after
      // set-shard-leader with a null leader). The compare-and-set on the epoch orders it against
      // every election, so no epoch has two replica sets.
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      if (command.expectedEpoch !== shard.leaderEpoch) return new Refusal('stale-epoch', `shard ${shard.name} is at epoch ${shard.leaderEpoch}, not ${command.expectedEpoch}`);
      if (shard.target === undefined) return new Refusal('invalid', `shard ${shard.name} has no change in progress`);
      const { target, ...rest } = shard;
      const leaderEpoch = command.expectedEpoch + 1;
      const next: ShardRecord = { ...rest, replicas: [...target], leader: null, leaderEpoch, state: 'active' };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name), leaderEpoch };
    }
    case 'set-shard-state': {
      const shard = state.shards.get(command.shard);
      if (shard === undefined) return new Refusal('unknown-shard', `shard ${command.shard} does not exist`);
      const next: ShardRecord = { ...shard, state: command.state };
      return { state: { ...state, shards: withEntry(state.shards, shard.name, next) }, changes: change('shard', shard.name) };
    }
    case 'set-map': {
      const repeated = duplicateOf(command.shards);
      if (repeated !== undefined) return new Refusal('invalid', `shard ${repeated} is listed twice`);
      const unknown = command.shards.find((name) => !state.shards.has(name));
      if (unknown !== undefined) return new Refusal('unknown-shard', `shard ${unknown} does not exist`);
      const map = { shards: [...command.shards], revision };
      return { state: { ...state, maps: withEntry(state.maps, command.namespace, map) }, changes: change('map', command.namespace) };
    }
    case 'set-setting':
    case 'cas-setting': {
      if (command.type === 'cas-setting') {
        const current = state.settings.get(command.key)?.revision ?? 0;
        if (current !== command.expectedRevision) {
          return new Refusal('cas-mismatch', `setting ${command.key} is at revision ${current}, not ${command.expectedRevision}`);
        }
      }
      const setting = { value: command.value, revision };
      return { state: { ...state, settings: withEntry(state.settings, command.key, setting) }, changes: change('setting', command.key) };
    }
  }
}
