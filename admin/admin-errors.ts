// Admin API error registry (SL_ADMIN_*). Each code maps to one HTTP status (see STATUS_OF in
// admin-server.ts) and travels in the JSON body {"error":{"code","message"}}, so scripts and
// `shardline ctl` match on codes, never on wording.
import { defineError } from '../base/index.js';

export const AdminErrors = {
  unauthorized: defineError({
    code: 'SL_ADMIN_UNAUTHORIZED',
    meaning: 'An admin API call (/api/*, /metrics) had no `Authorization: Bearer <token>` header, or the token is not the admin token. HTTP 401.',
    fix: 'Send the admin token (setting admin-token, SHARDLINE_ADMIN_TOKEN, or the file <data-dir>/admin-token) as `Authorization: Bearer <token>`.',
    message: (why: string) => `unauthorized: ${why}`,
  }),
  notFound: defineError({
    code: 'SL_ADMIN_NOT_FOUND',
    meaning: 'The admin API has no such route, or the named object (client, retained message, shard) does not exist on this node. HTTP 404.',
    fix: 'Check the name against the matching list call (/api/mqtt/clients, /api/mqtt/retained, /api/shards); clients are listed only while connected.',
    message: (what: string) => `${what} not found`,
  }),
  badRequest: defineError({
    code: 'SL_ADMIN_BAD_REQUEST',
    meaning: 'An admin API request failed validation: a query parameter out of range (offset, limit 1..1000), an invalid topic or filter, or a malformed body. HTTP 400.',
    fix: 'Correct the parameter the message names; the OpenAPI document at /docs/json describes every route.',
    message: (why: string) => why,
  }),
  notLive: defineError({
    code: 'SL_ADMIN_NOT_LIVE',
    meaning: 'PATCH /api/config named a setting that cannot be changed while the node runs. HTTP 409.',
    fix: 'Change the setting in the configuration file, environment or command line and restart the node.',
    message: (key: string) => `setting ${JSON.stringify(key)} cannot be changed while the node runs; change it in the configuration and restart`,
  }),
  notAvailable: defineError({
    code: 'SL_ADMIN_NOT_AVAILABLE',
    meaning: 'The route needs a part this node does not run (the MQTT broker on a journal-only node, the shard store on a broker without one) or that is not ready (closed, not answering). HTTP 503.',
    fix: 'Ask a node that runs the role (see /api/nodes), or wait until /readyz answers 200.',
    message: (what: string) => `${what} is not available on this node`,
  }),
  notLeader: defineError({
    code: 'SL_ADMIN_NOT_LEADER',
    meaning: 'A cluster change (add or remove a placement member, transfer leadership) reached a node whose placement voter is not the Raft leader. HTTP 409; the body\'s error.leader names the leader this node knows (id and placement address; id 0 when none is known).',
    fix: 'Send the change to the leader\'s admin API (`shardline ctl cluster status` on any node names the leader), or wait for an election and retry.',
    message: (nodeId: number, leader: string) => `placement node ${nodeId} is not the leader (leader: ${leader}); send cluster changes to the leader's admin API`,
  }),
  clusterUnavailable: defineError({
    code: 'SL_ADMIN_CLUSTER_UNAVAILABLE',
    meaning: 'The placement group did not answer a cluster change in time: no quorum, no leader, or the leader changed under it. HTTP 503. A membership change or transfer may still take effect.',
    fix: 'Check that a majority of placement nodes run and reach each other (`shardline ctl cluster members`), look at the voter set, then retry if the change is not there.',
    message: (what: string, why: string) => `${what}: the placement group did not answer (${why}); the change may still take effect, check the members before retrying`,
  }),
  changeInProgress: defineError({
    code: 'SL_ADMIN_CHANGE_IN_PROGRESS',
    meaning: "A shard's replica set was asked to change (POST /api/cluster/shards/:name/reassign, `shardline ctl shard move|reassign`) while another change of it is in progress. HTTP 409.",
    fix: 'Wait for the change in progress to finish (`shardline ctl shard reassign SHARD --replicas ...` waits for it, GET /api/cluster/shards/:name shows its target), then ask again.',
    message: (shard: string, target: string) => `shard ${shard} is already moving to ${target}; wait for that change to finish`,
  }),
  internal: defineError({
    code: 'SL_ADMIN_INTERNAL',
    meaning: 'An admin API call failed on an unexpected error inside the node. HTTP 500; the node log has the cause.',
    fix: 'Read the node log line for the request, and report it if it is a bug.',
    message: (why: string) => `internal error: ${why}`,
  }),
  listenFailed: defineError({
    code: 'SL_ADMIN_LISTEN_FAILED',
    meaning: 'The admin HTTP server could not bind its address: the port is in use, the address is not on this machine, or the port needs privileges.',
    fix: 'Stop whatever holds the port or pick another with --admin-port (0 picks a free one); check --host.',
    message: (address: string, reason: string) => `cannot listen for the admin API on ${address}: ${reason}`,
  }),
};
