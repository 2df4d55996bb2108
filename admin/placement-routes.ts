// The placement group's admin routes (/api/cluster/*): this node's view (status), every member
// with its own view and lag (members), and the operator's changes: add and remove a voter,
// transfer leadership. A route plugin (route-kit.ts) the node runtime registers where placement
// runs; without it /api/cluster/* is 404, which the dashboard reads as "no placement here".
//
// Changes are taken by the leader's admin API only: a follower answers 409 SL_ADMIN_NOT_LEADER
// with the leader it knows, rather than forwarding, so the node an operator addressed is the
// node that acted. A change the group does not answer in time is 503: its outcome is unknown.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isShardlineError } from '../base/index.js';
import { PlacementErrors } from '../placement/service/index.js';
import { AdminErrors } from './admin-errors.js';
import { errorBody, errors, secured, type AdminRoutePlugin } from './route-kit.js';
import type { JsonValue, NodeRecord, ShardRecord } from '../placement/metadata/index.js';
import { PLACEMENT_SETTINGS, placementSetting, type PlacementSettingSpec } from '../shard-model/index.js';
import type { PlacementAdmin, PlacementMember, PlacementStatus } from './placement-admin.js';

const TRANSFER_WAIT_MS = 5_000;
const TRANSFER_POLL_MS = 20;

const nodeId = { type: 'integer', minimum: 1, maximum: 0xffff_ffff, description: 'placement (Raft) node id' } as const;
const index = { type: 'integer', minimum: 0 } as const;

const statusBody = {
  type: 'object',
  required: ['id', 'role', 'term', 'leader', 'leaderAddress', 'commitIndex', 'appliedIndex', 'applyLag', 'revision', 'voters', 'clusterId'],
  properties: {
    id: nodeId,
    role: { type: 'string', enum: ['leader', 'follower', 'candidate', 'preCandidate'] },
    term: index,
    leader: { type: 'integer', description: 'the leader this node knows; 0 when none' },
    leaderAddress: { type: 'string', description: "the leader's placement gRPC address; empty when none is known" },
    commitIndex: index,
    appliedIndex: index,
    applyLag: { type: 'integer', description: 'commitIndex - appliedIndex: committed entries this node has not applied yet' },
    revision: { type: 'integer', description: 'metadata revision applied here' },
    voters: { type: 'array', items: nodeId },
    clusterId: { type: 'string' },
  },
} as const;

const memberItem = {
  type: 'object',
  required: ['id', 'address', 'self', 'voter', 'reachable', 'role', 'term', 'commitIndex', 'appliedIndex', 'lag', 'error'],
  properties: {
    id: nodeId,
    address: { type: 'string', description: 'placement gRPC address (configuration)' },
    self: { type: 'boolean', description: 'the node serving this API' },
    voter: { type: 'boolean', description: "in this node's voter set" },
    reachable: { type: 'boolean', description: 'answered its Status within the probe time' },
    role: { type: ['string', 'null'] },
    term: { type: ['integer', 'null'] },
    commitIndex: { type: ['integer', 'null'] },
    appliedIndex: { type: ['integer', 'null'] },
    lag: { type: ['integer', 'null'], description: "entries the member has yet to apply against the leader's commit index; null when either did not answer" },
    error: { type: ['string', 'null'], description: 'why it is not reachable' },
  },
} as const;

const membersBody = {
  type: 'object',
  required: ['leader', 'term', 'commitIndex', 'members'],
  properties: {
    leader: { type: 'integer', description: 'the leader this node knows; 0 when none' },
    term: index,
    commitIndex: { type: ['integer', 'null'], description: "the leader's commit index; null when the leader did not answer" },
    members: { type: 'array', items: memberItem },
  },
} as const;

const votersBody = { type: 'object', required: ['index', 'voters'], properties: { index: { ...index, description: 'log index of the applied change' }, voters: { type: 'array', items: nodeId } } } as const;

const notLeaderBody = {
  ...errorBody,
  // Also SL_PLACEMENT_CHANGE_IN_PROGRESS (another membership change is not applied yet) and
  // SL_PLACEMENT_QUORUM_AT_RISK (too few voters answer for this change), without `leader`.
  description: `${AdminErrors.notLeader.code} (with leader), SL_PLACEMENT_CHANGE_IN_PROGRESS or SL_PLACEMENT_QUORUM_AT_RISK`,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        ...errorBody.properties.error.properties,
        leader: { type: 'object', required: ['id', 'address'], properties: { id: { type: 'integer', description: '0 when no leader is known' }, address: { type: 'string' } } },
      },
    },
  },
} as const;

const changeErrors = { 409: notLeaderBody, 503: { ...errorBody, description: AdminErrors.clusterUnavailable.code } };
const idBody = { type: 'object', required: ['id'], properties: { id: nodeId } } as const;

function statusView(status: PlacementStatus): Record<string, unknown> {
  return { ...status, applyLag: Math.max(0, status.commitIndex - status.appliedIndex) };
}

function membersView(self: PlacementStatus, members: readonly PlacementMember[]): Record<string, unknown> {
  const leaderStatus = members.find((member) => member.id === self.leader)?.status ?? null;
  const leaderCommit = leaderStatus?.commitIndex ?? null;
  return {
    leader: self.leader,
    term: self.term,
    commitIndex: leaderCommit,
    members: members.map(({ id, address, status, error }) => ({
      id,
      address,
      self: id === self.id,
      voter: self.voters.includes(id),
      reachable: status !== null,
      role: status?.role ?? null,
      term: status?.term ?? null,
      commitIndex: status?.commitIndex ?? null,
      appliedIndex: status?.appliedIndex ?? null,
      lag: status === null || leaderCommit === null ? null : Math.max(0, leaderCommit - status.appliedIndex),
      error,
    })),
  };
}

/** How far the learners of a shard's replica-set change have copied, as the replication controller last saw it. */
export interface ChangeProgress {
  readonly highWatermark: number;
  readonly learners: readonly { readonly node: string; readonly durable: number }[];
}

const shardBody = {
  type: 'object',
  required: ['name', 'replicas', 'leader', 'leaderEpoch', 'state', 'target', 'learners', 'highWatermark'],
  properties: {
    name: { type: 'string' },
    replicas: { type: 'array', items: { type: 'string' }, description: 'journal node ids, the preferred leader first' },
    leader: { type: ['string', 'null'] },
    leaderEpoch: index,
    state: { type: 'string', enum: ['active', 'reassigning', 'offline'] },
    target: { type: ['array', 'null'], items: { type: 'string' }, description: 'the replica set a change in progress moves to; null when none' },
    learners: {
      type: 'array',
      description: "the target's nodes outside the set, with the durable end each last reported to the leader (-1: not yet fetched; empty on a node whose replication controller does not run, i.e. not the placement leader)",
      items: { type: 'object', required: ['node', 'durable'], properties: { node: { type: 'string' }, durable: { type: 'integer' } } },
    },
    highWatermark: { type: ['integer', 'null'], description: "the leader's HW as the controller last saw it; null when unknown" },
  },
} as const;

const settingItem = {
  type: 'object',
  required: ['key', 'value', 'default', 'meaning', 'summary'],
  properties: {
    key: { type: 'string' },
    value: { description: 'the value placement holds; null when never set (the default applies)' },
    default: {},
    meaning: { type: 'string', description: 'what the value in force means' },
    summary: { type: 'string' },
  },
} as const;

function settingView(spec: PlacementSettingSpec, stored: JsonValue | undefined): Record<string, unknown> {
  return { key: spec.key, value: stored ?? null, default: spec.defaultValue, meaning: spec.describe(stored), summary: spec.summary };
}

/** The /api/cluster routes over one placement voter. */
export function placementAdminRoutes(
  placement: PlacementAdmin,
  options: {
    /** How long transfer-leader waits to see the target lead, ms (default 5000). */ transferWaitMs?: number;
    /** The replication controller's view of a change's learners (only the placement leader's is current). */ changeProgress?: (shard: string) => ChangeProgress | undefined;
  } = {},
): AdminRoutePlugin {
  const transferWaitMs = options.transferWaitMs ?? TRANSFER_WAIT_MS;
  return (app: FastifyInstance) => {
    /** Answers 409 with the leader hint (and returns false) unless this node leads. */
    const leading = (reply: FastifyReply): boolean => {
      const status = placement.status();
      if (status.role === 'leader') return true;
      const leader = status.leader === 0 ? 'unknown' : `${status.leader} at ${status.leaderAddress || 'an unknown address'}`;
      const error = AdminErrors.notLeader.create({ leaderId: status.leader }, status.id, leader);
      void reply.code(409).send({ error: { code: error.code, message: error.message, leader: { id: status.leader, address: status.leaderAddress } } });
      return false;
    };

    const requireVoter = (id: number): void => {
      if (!placement.status().voters.includes(id)) throw AdminErrors.notFound.create({ id }, `placement member ${id} (not a voter)`);
    };

    app.get('/api/cluster/status', {
      schema: { tags: ['cluster'], summary: "This node's view of the placement group: role, term, leader, commit and applied index, voters", ...secured, response: { 200: statusBody, ...errors(401) } },
    }, async () => statusView(placement.status()));

    app.get('/api/cluster/members', {
      schema: {
        tags: ['cluster'],
        summary: "Every configured placement node with its own status and its lag behind the leader's commit index (a node that does not answer within 1 s is shown unreachable)",
        ...secured,
        response: { 200: membersBody, ...errors(401) },
      },
    }, async () => {
      const members = await placement.members();
      return membersView(placement.status(), members);
    });

    app.post<{ Body: { id: number } }>('/api/cluster/members', {
      schema: {
        tags: ['cluster'],
        summary: 'Add a configured placement node as a voter (leader only); answers the new voter set once applied. Adding a voter again changes nothing',
        ...secured,
        body: idBody,
        response: { 200: votersBody, ...errors(400, 401, 404), ...changeErrors },
      },
    }, async (request, reply) => {
      if (!leading(reply)) return reply;
      const { id } = request.body;
      return change(id, `add member ${id}`, () => placement.addMember(id));
    });

    app.delete<{ Params: { id: number } }>('/api/cluster/members/:id', {
      schema: {
        tags: ['cluster'],
        summary: 'Remove a voter (leader only); answers the new voter set once applied. A leader that removes itself steps down',
        ...secured,
        params: { type: 'object', required: ['id'], properties: { id: nodeId } },
        response: { 200: votersBody, ...errors(400, 401, 404), ...changeErrors },
      },
    }, async (request, reply) => {
      if (!leading(reply)) return reply;
      const { id } = request.params;
      requireVoter(id);
      return change(id, `remove member ${id}`, () => placement.removeMember(id));
    });

    const shardView = (shard: ShardRecord): Record<string, unknown> => {
      const progress = options.changeProgress?.(shard.name);
      const learners = (shard.target ?? []).filter((id) => !shard.replicas.includes(id)).map((node) => ({ node, durable: progress?.learners.find((one) => one.node === node)?.durable ?? -1 }));
      return { name: shard.name, replicas: shard.replicas, leader: shard.leader, leaderEpoch: shard.leaderEpoch, state: shard.state, target: shard.target ?? null, learners, highWatermark: progress?.highWatermark ?? null };
    };
    const findShard = async (name: string): Promise<{ shard: ShardRecord; nodes: readonly NodeRecord[] }> => {
      const { shards, nodes } = await change(0, `read shard ${name}`, () => placement.shards());
      const shard = shards.find((one) => one.name === name);
      if (shard === undefined) throw AdminErrors.notFound.create({ shard: name }, `shard ${name} (placement has no such shard)`);
      return { shard, nodes };
    };
    const shardParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 256 } } } as const;

    app.get<{ Params: { name: string } }>('/api/cluster/shards/:name', {
      schema: { tags: ['cluster'], summary: "A shard's placement: replica set, leader, epoch, and a replica-set change in progress with its learners' progress", ...secured, params: shardParams, response: { 200: shardBody, ...errors(401, 404), 503: changeErrors[503] } },
    }, async (request) => shardView((await findShard(request.params.name)).shard));

    app.post<{ Params: { name: string }; Body: { replicas: string[] } }>('/api/cluster/shards/:name/reassign', {
      schema: {
        tags: ['cluster'],
        summary: "Begin moving a shard's replica set (leader only): the new nodes copy the shard as learners, then the replication controller switches the set; answers at once with the shard, the change in progress",
        ...secured,
        params: shardParams,
        body: { type: 'object', required: ['replicas'], additionalProperties: false, properties: { replicas: { type: 'array', minItems: 1, maxItems: 5, items: { type: 'string', minLength: 1, maxLength: 256 } } } },
        response: { 200: shardBody, ...errors(400, 401, 404), ...changeErrors },
      },
    }, async (request, reply) => {
      if (!leading(reply)) return reply;
      const { name } = request.params;
      const replicas = request.body.replicas;
      // An election may move the epoch between the read and the proposal: read again, a few times.
      for (let attempt = 0; attempt < 5; attempt++) {
        const { shard, nodes } = await findShard(name);
        checkReassign(shard, nodes, replicas);
        const result = await change(0, `reassign ${name}`, () => placement.beginReassign(name, shard.leaderEpoch, replicas));
        if (result.status === 'ok') return shardView((await findShard(name)).shard);
        if (result.code === 'change-in-progress') throw AdminErrors.changeInProgress.create({ shard: name }, name, (shard.target ?? []).join(','));
        if (result.code !== 'stale-epoch') throw AdminErrors.badRequest.create({ shard: name, code: result.code }, `placement refused the change: ${result.detail}`);
      }
      throw AdminErrors.clusterUnavailable.create({ shard: name }, `reassign ${name}`, 'its epoch kept moving (elections); try again');
    });

    app.get('/api/cluster/settings', {
      schema: { tags: ['cluster'], summary: 'The placement settings an operator may change (replication.factor, replication.replace-after-ms), with the values placement holds, read through the leader', ...secured, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: settingItem } } }, ...errors(401), 503: changeErrors[503] } },
    }, async () => {
      const stored = await change(0, 'read the placement settings', () => placement.settings());
      return { items: PLACEMENT_SETTINGS.map((spec) => settingView(spec, stored.get(spec.key))) };
    });

    app.put<{ Params: { key: string }; Body: { value: JsonValue } }>('/api/cluster/settings/:key', {
      schema: {
        tags: ['cluster'],
        summary: 'Change a placement setting (leader only); answers the setting as placement holds it once applied. Every node reads it from placement: no restart',
        ...secured,
        params: { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1, maxLength: 256 } } },
        body: { type: 'object', required: ['value'], additionalProperties: false, properties: { value: { type: ['integer', 'string'], description: 'replication.factor: 1-5; replication.replace-after-ms: milliseconds, a string with a unit (90s, 10m, 2h), 0 or "never"' } } },
        response: { 200: settingItem, ...errors(400, 401, 404), ...changeErrors },
      },
    }, async (request, reply) => {
      const spec = placementSetting(request.params.key);
      if (spec === undefined) throw AdminErrors.notFound.create({ key: request.params.key }, `placement setting ${JSON.stringify(request.params.key)} (known: ${PLACEMENT_SETTINGS.map((one) => one.key).join(', ')})`);
      const parsed = spec.parse(request.body.value);
      if ('error' in parsed) throw AdminErrors.badRequest.create({ key: spec.key }, parsed.error);
      if (!leading(reply)) return reply;
      const result = await change(0, `set ${spec.key}`, () => placement.setSetting(spec.key, parsed.value));
      if (result.status !== 'ok') throw AdminErrors.badRequest.create({ key: spec.key, code: result.code }, `placement refused the setting: ${result.detail}`);
      request.log.info({ key: spec.key, value: parsed.value }, 'placement setting changed');
      return settingView(spec, parsed.value);
    });

    app.post<{ Body: { id: number } }>('/api/cluster/transfer-leader', {
      schema: {
        tags: ['cluster'],
        summary: `Hand leadership to another voter (leader only); answers once this node sees it lead (by default within ${TRANSFER_WAIT_MS / 1000} s, else 503)`,
        ...secured,
        body: idBody,
        response: { 200: { type: 'object', required: ['leader', 'term'], properties: { leader: nodeId, term: index } }, ...errors(400, 401, 404), ...changeErrors },
      },
    }, async (request, reply) => {
      if (!leading(reply)) return reply;
      const { id } = request.body;
      requireVoter(id);
      const what = `transfer leadership to ${id}`;
      await change(id, what, () => placement.transferLeader(id));
      const deadline = Date.now() + transferWaitMs;
      for (let polls = 0; polls <= transferWaitMs / TRANSFER_POLL_MS; polls++) {
        const status = placement.status();
        if (status.leader === id) return { leader: id, term: status.term };
        if (Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, TRANSFER_POLL_MS));
      }
      throw AdminErrors.clusterUnavailable.create({ id }, what, `node ${id} was not seen leading within ${transferWaitMs} ms`);
    });
  };
}

/**
 * The checks placement makes too, first here so the operator gets a message naming the node:
 * an unknown node, one without the journal role, the same set, a change in progress.
 */
function checkReassign(shard: ShardRecord, nodes: readonly NodeRecord[], replicas: readonly string[]): void {
  if (new Set(replicas).size !== replicas.length) throw AdminErrors.badRequest.create({ shard: shard.name }, `a node is listed twice in ${replicas.join(',')}`);
  for (const id of replicas) {
    const node = nodes.find((one) => one.id === id);
    if (node === undefined) throw AdminErrors.badRequest.create({ shard: shard.name, node: id }, `node ${id} is not registered with placement (shardline ctl replica status lists the journal nodes)`);
    if (!node.roles.includes('journal')) throw AdminErrors.badRequest.create({ shard: shard.name, node: id }, `node ${id} is not a journal node (roles: ${node.roles.join(', ')})`);
  }
  if (replicas.join(',') === shard.replicas.join(',')) throw AdminErrors.badRequest.create({ shard: shard.name }, `shard ${shard.name} already has the replicas ${replicas.join(',')}`);
  if (shard.target !== undefined) throw AdminErrors.changeInProgress.create({ shard: shard.name }, shard.name, shard.target.join(','));
}

/** Runs a change, turning the placement service's refusals into the admin API's codes. */
async function change<T>(id: number, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!isShardlineError(error)) throw error;
    if (error.code === PlacementErrors.unknownNode.code) throw AdminErrors.notFound.withCause(error, { id }, `placement node ${id} (the group has no address for it: a new node joins with shardline start --placement-join)`);
    const unknownOutcome = [PlacementErrors.timeout.code, PlacementErrors.dropped.code, PlacementErrors.unavailable.code, PlacementErrors.stopping.code, PlacementErrors.notLeader.code];
    if (unknownOutcome.includes(error.code)) throw AdminErrors.clusterUnavailable.withCause(error, { what }, what, error.message);
    throw error;
  }
}
