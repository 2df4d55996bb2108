// Partition shapes for the simulated network (issue 12): leader isolated, minority/majority
// split, bridge, ring, and flapping. Each builder returns a Partition: a predicate over directed
// links plus a description for the run's trace. A node always reaches itself (the network checks
// that before asking the partition).
//
// Builders that choose nodes take a Random, so which nodes end up on which side is part of the
// seed. Sides are reported in the description, sorted, so a trace reads the same whatever the
// shuffle order was.

import type { NodeId, Partition } from './network.js';
import type { Random } from './random.js';

const sorted = <N extends NodeId>(nodes: readonly N[]): N[] => nodes.slice().sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
const list = (nodes: readonly NodeId[]): string => `{${sorted(nodes).join(',')}}`;

/** Cuts every link to and from `node`; the others still reach each other. */
export function isolate<N extends NodeId>(node: N): Partition<N> {
  return {
    description: `isolate ${String(node)}`,
    connects: (from, to) => from !== node && to !== node,
  };
}

/** Nodes reach each other only inside their own group; a node in no group reaches nobody. */
export function split<N extends NodeId>(groups: readonly (readonly N[])[]): Partition<N> {
  const groupOf = new Map<N, number>();
  groups.forEach((group, index) => {
    for (const node of group) {
      if (groupOf.has(node)) throw new RangeError(`split: node ${String(node)} is in two groups`);
      groupOf.set(node, index);
    }
  });
  return {
    description: `split ${groups.map(list).join(' | ')}`,
    connects: (from, to) => {
      const side = groupOf.get(from);
      return side !== undefined && side === groupOf.get(to);
    },
  };
}

/** A random minority (floor((n-1)/2) nodes, at least one) cut off from the majority. */
export function minorityMajority<N extends NodeId>(nodes: readonly N[], random: Random): Partition<N> {
  if (nodes.length < 2) throw new RangeError(`minorityMajority needs at least 2 nodes, got ${nodes.length}`);
  const shuffled = random.shuffle(nodes);
  const minoritySize = Math.max(1, Math.floor((nodes.length - 1) / 2));
  const minority = shuffled.slice(0, minoritySize);
  const majority = shuffled.slice(minoritySize);
  const partition = split([minority, majority]);
  return { ...partition, description: `minority ${list(minority)} | majority ${list(majority)}` };
}

/**
 * The other nodes are split into two random halves that cannot reach each other; `bridgeNode`
 * reaches both. A Raft group under this shape can elect only the bridge, or a node whose votes
 * come through it: the classic trap for leaders that do not check quorum.
 */
export function bridge<N extends NodeId>(nodes: readonly N[], bridgeNode: N, random: Random): Partition<N> {
  if (!nodes.includes(bridgeNode)) throw new RangeError(`bridge: ${String(bridgeNode)} is not one of the nodes`);
  const others = random.shuffle(nodes.filter((node) => node !== bridgeNode));
  const half = Math.ceil(others.length / 2);
  const left = new Set(others.slice(0, half));
  const right = new Set(others.slice(half));
  return {
    description: `bridge ${String(bridgeNode)} between ${list([...left])} and ${list([...right])}`,
    connects: (from, to) => {
      if (from === bridgeNode || to === bridgeNode) return true;
      return (left.has(from) && left.has(to)) || (right.has(from) && right.has(to));
    },
  };
}

/** Each node reaches only its two neighbours in `order`, taken as a cycle. */
export function ring<N extends NodeId>(order: readonly N[]): Partition<N> {
  if (new Set(order).size !== order.length) throw new RangeError('ring: a node appears twice in the order');
  const position = new Map<N, number>(order.map((node, index) => [node, index]));
  const n = order.length;
  return {
    description: `ring ${order.join('-')}`,
    connects: (from, to) => {
      const a = position.get(from);
      const b = position.get(to);
      if (a === undefined || b === undefined) return false;
      const distance = Math.abs(a - b);
      return distance === 1 || distance === n - 1;
    },
  };
}

/**
 * `inner` in force for periodTicks, then lifted for periodTicks, and so on from startTick. The
 * toggling is a function of the tick, not of calls, so the same tick always gives the same answer.
 */
export function flapping<N extends NodeId>(inner: Partition<N>, periodTicks: number, startTick: number): Partition<N> {
  if (!Number.isSafeInteger(periodTicks) || periodTicks < 1) throw new RangeError(`flapping: periodTicks must be a positive integer, got ${periodTicks}`);
  return {
    description: `flapping every ${periodTicks} ticks from ${startTick}: ${inner.description}`,
    connects: (from, to, now) => {
      const phase = Math.floor((now - startTick) / periodTicks);
      const inForce = now >= startTick && phase % 2 === 0;
      return !inForce || inner.connects(from, to, now);
    },
  };
}
