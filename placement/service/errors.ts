// Error registry of the placement service (placement/service/): refusals of peers and clients,
// and what a client sees. Each code has one gRPC status (grpc-status.ts) and a row in
// docs/errors.md.
import { defineError } from '../../base/index.js';

export const PlacementErrors = {
  unauthenticated: defineError({
    code: 'SL_PLACEMENT_UNAUTHENTICATED',
    meaning: 'A placement call carried no cluster token or a wrong one (metadata sl-cluster-token); it was refused before it reached Raft.',
    fix: 'Give every placement node and client the same --placement-token (cluster token).',
    message: (method: string) => `placement ${method} refused: missing or wrong cluster token`,
  }),
  wrongCluster: defineError({
    code: 'SL_PLACEMENT_WRONG_CLUSTER',
    meaning: 'A placement call or peer message names another cluster id than this node\'s: it comes from another placement group.',
    fix: 'Point the node or client at the addresses of its own cluster, or correct --cluster-id.',
    message: (method: string, got: string, expected: string) => `placement ${method} refused: cluster id ${JSON.stringify(got)} is not this cluster's ${JSON.stringify(expected)}`,
  }),
  unknownNode: defineError({
    code: 'SL_PLACEMENT_UNKNOWN_NODE',
    meaning: 'A peer message came from (or was addressed to) a node id this node does not know the address of (neither in --placement-peers nor recorded by a join), or a membership change named such an id.',
    fix: 'Start a new voter with --placement-join so the group records its address (docs/operations.md, "Growing a placement group"); founding voters list each other in --placement-peers.',
    message: (detail: string) => `placement: ${detail}`,
  }),
  badMessage: defineError({
    code: 'SL_PLACEMENT_BAD_MESSAGE',
    meaning: 'A Raft message between placement nodes was truncated, corrupt (checksum), of an unknown version, or inconsistent with its envelope; it was not stepped.',
    fix: 'Run the same Shardline version on every placement node; a recurring error points at a broken network path or a foreign sender.',
    message: (detail: string) => `placement: bad Raft message: ${detail}`,
  }),
  notLeader: defineError({
    code: 'SL_PLACEMENT_NOT_LEADER',
    meaning: 'The placement node that got a proposal, read or membership change is not the Raft leader; the context names the leader it knows (leaderId, leaderAddress), if any.',
    fix: 'Send the request to the leader (PlacementClient does this by itself).',
    message: (nodeId: number, leader: string) => `placement node ${nodeId} is not the leader (leader: ${leader})`,
  }),
  dropped: defineError({
    code: 'SL_PLACEMENT_DROPPED',
    meaning: 'The request was taken but its outcome is unknown here: leadership changed before it committed, or too many requests were waiting. A command may still be applied.',
    fix: 'Retry with the same client id and sequence (applied at most once); PlacementClient does this by itself.',
    message: (reason: string) => `placement request dropped: ${reason}`,
  }),
  timeout: defineError({
    code: 'SL_PLACEMENT_TIMEOUT',
    meaning: 'A placement request got no answer within its deadline (request-timeout-ms): no quorum, or a leader cut off from it. A command may still be applied.',
    fix: 'Check that a majority of placement nodes run and reach each other; retry with the same client id and sequence.',
    message: (what: string, ms: number) => `placement ${what} got no answer within ${ms} ms`,
  }),
  malformedCommand: defineError({
    code: 'SL_PLACEMENT_MALFORMED_COMMAND',
    meaning: 'A proposed placement command is not valid JSON of a known command type with the right fields (placement/metadata/command.ts).',
    fix: 'Send a command as documented in docs/placement.md ("Metadata state machine").',
    message: (detail: string) => `placement: ${detail}`,
  }),
  revisionCompacted: defineError({
    code: 'SL_PLACEMENT_REVISION_COMPACTED',
    meaning: 'A watch asked for changes from a revision whose changes this node no longer keeps (its watch history was trimmed, or began at a snapshot or restart).',
    fix: 'Read the whole state (Read), then watch from its revision + 1; PlacementClient does this by itself.',
    message: (fromRevision: number, oldestRevision: number) => `placement watch from revision ${fromRevision}: changes are kept only from ${oldestRevision}`,
  }),
  watchTooSlow: defineError({
    code: 'SL_PLACEMENT_WATCH_TOO_SLOW',
    meaning: 'A watch stream did not take its changes fast enough: it stayed blocked longer than watch-stall-ms, or the node\'s watch history moved past it while it was blocked. The server cut it off rather than buffer without bound.',
    fix: 'Read changes faster, or re-read the state and watch again from its revision + 1.',
    message: (detail: string) => `placement watch cut off: ${detail}`,
  }),
  stopping: defineError({
    code: 'SL_PLACEMENT_STOPPING',
    meaning: 'The placement node is shutting down; the request or watch was ended without an outcome.',
    fix: 'Retry on another placement node (PlacementClient does this by itself).',
    message: (nodeId: number) => `placement node ${nodeId} is shutting down`,
  }),
  unavailable: defineError({
    code: 'SL_PLACEMENT_UNAVAILABLE',
    meaning: 'The placement client reached no leader within its deadline: every address refused or failed, or none led.',
    fix: 'Check the --placement addresses and that a majority of placement nodes run.',
    message: (what: string, attempts: number, ms: number, last: string) => `placement ${what} failed after ${attempts} attempts in ${ms} ms; last error: ${last}`,
  }),
  listenFailed: defineError({
    code: 'SL_PLACEMENT_LISTEN_FAILED',
    meaning: 'The placement gRPC server could not listen on its address (port in use, not an address of this machine, or needs privileges).',
    fix: 'Pick another placement port or stop the process that holds it.',
    message: (address: string, cause: string) => `placement gRPC server cannot listen on ${address}: ${cause}`,
  }),
  changeInProgress: defineError({
    code: 'SL_PLACEMENT_CHANGE_IN_PROGRESS',
    meaning: 'A membership change (add, remove or join of a voter) was refused because another one is not finished yet: Raft changes the voter set one voter at a time, and a new leader counts its first entries as pending until they are applied.',
    fix: 'Wait until the other change is done (shardline ctl cluster status shows the new voter set), then retry; a joining voter can simply be started again.',
    message: (nodeId: number, detail: string) => `placement membership change for node ${nodeId} refused: ${detail}; retry once it is done`,
  }),
  quorumAtRisk: defineError({
    code: 'SL_PLACEMENT_QUORUM_AT_RISK',
    meaning: 'A membership change was refused because too few voters answer the leader now: after it, the group would need more running voters for every write than it has (adding a voter to a group with a voter down, or removing a running voter while another is down).',
    fix: 'Bring the unreachable voters back, or remove the lost ones first (shardline ctl cluster remove-member ID), then retry; to replace a lost voter, remove it before the new one joins.',
    message: (detail: string) => `placement membership change refused: ${detail}`,
  }),
  joinConflict: defineError({
    code: 'SL_PLACEMENT_JOIN_CONFLICT',
    meaning: 'A voter asked to join under a node id, or from an address, that the group already gives to another voter, or under the id of a voter that was removed; letting it in would make two processes vote under one id (a removed id: the new process cannot know what the old one voted for) or share one address.',
    fix: 'Start the new voter with an id never used in this group (--node-id) and its own address; to replace a lost voter, run shardline ctl cluster remove-member ID first, then join the replacement under a new id.',
    message: (detail: string) => `placement join refused: ${detail}`,
  }),
  notMember: defineError({
    code: 'SL_PLACEMENT_NOT_MEMBER',
    meaning: 'A placement node that is not a voter of the group (it was removed, typically while it was down) asked the leader for votes; the leader refused. It cannot disturb the group (pre-vote and check-quorum), but it does nothing useful either.',
    fix: 'Stop that node. To have it back, run shardline ctl cluster add-member ID while it still has its log, or empty its data directory and start it with a new --node-id and --placement-join (a removed id may not join again).',
    message: (nodeId: number, voters: string) => `placement: node ${nodeId} is not a voter of this group (voters ${voters}): it was removed; stop it, or empty its data directory and join under a new --node-id with --placement-join`,
  }),
  invalidOptions: defineError({
    code: 'SL_PLACEMENT_INVALID_OPTIONS',
    meaning: 'The placement server or client options are inconsistent (a node not among its peers, an empty token, a bad timing value).',
    fix: 'Correct the named setting.',
    message: (detail: string) => `placement options: ${detail}`,
  }),
};
