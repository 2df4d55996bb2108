// What a node checks on a Raft message from a peer before stepping it. The Raft core treats a
// malformed message as a broken invariant (it throws and the node must stop), and applying an
// entry that does not decode is a broken log; so everything the core or the state machine
// would choke on is refused here, with SL_PLACEMENT_BAD_MESSAGE, and the message is dropped.
// Stale terms are not refused: the core answers or ignores them by the Raft rules.
import { decodeConfChange, type Message, type MessageType } from '../raft/index.js';
import { MalformedCommandError, SnapshotFormatError, decodeCommand, restore } from '../metadata/index.js';
import { PlacementErrors } from './errors.js';

/**
 * Types that travel between voters. Local types never leave a node, and the forwarded ones
 * (prop, readIndex, readIndexResp, transferLeader) are not used: a follower answers not-leader
 * instead of forwarding, so a peer sending them is misbehaving.
 */
const PEER_TYPES = new Set<MessageType>(['app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'snap', 'heartbeat', 'heartbeatResp', 'timeoutNow']);

export function checkPeerMessage(m: Message, from: number, to: number): void {
  const bad = (detail: string) => PlacementErrors.badMessage.create({ from, to, type: m.type }, detail);
  if (m.from !== from || m.to !== to) throw bad(`message ${m.from}→${m.to} inside a Step envelope ${from}→${to}`);
  if (!PEER_TYPES.has(m.type)) throw bad(`type ${m.type} is not sent between placement voters`);
  if (m.term <= 0) throw bad(`${m.type} carries term ${m.term}`);
  if ((m.type === 'snap') !== (m.snapshot !== null)) throw bad(m.type === 'snap' ? 'snap without a snapshot' : `${m.type} with a snapshot`);
  if (m.entries.length > 0 && m.type !== 'app') throw bad(`${m.type} carries entries`);
  let previousTerm = m.logTerm;
  m.entries.forEach((entry, i) => {
    if (entry.index !== m.index + 1 + i) throw bad(`entry ${i} has index ${entry.index}, expected ${m.index + 1 + i}`);
    if (entry.term < previousTerm || entry.term > m.term) throw bad(`entry ${entry.index} has term ${entry.term} outside [${previousTerm}, ${m.term}]`);
    previousTerm = entry.term;
    try {
      if (entry.type === 'conf') decodeConfChange(entry.data);
      else if (entry.data.byteLength > 0) decodeCommand(entry.data);
    } catch (error) {
      if (error instanceof MalformedCommandError || (error instanceof Error && error.message.startsWith('raft: not a conf change'))) throw bad(`entry ${entry.index}: ${error.message}`);
      // JSON.parse inside decodeConfChange throws SyntaxError on garbage.
      if (error instanceof SyntaxError) throw bad(`entry ${entry.index}: conf change is not JSON`);
      throw error;
    }
  });
  if (m.snapshot !== null) {
    if (m.snapshot.metadata.confState.voters.some((voter) => voter <= 0)) throw bad('snapshot names voter 0');
    // Installing restores the state from these bytes; a snapshot that does not restore is refused now.
    try {
      restore(m.snapshot.data);
    } catch (error) {
      if (error instanceof SnapshotFormatError) throw bad(`snapshot at ${m.snapshot.metadata.index}: ${error.message}`);
      throw error;
    }
  }
}
