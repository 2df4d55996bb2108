// One filter against one topic name, for the places that test a handful of pairs (retained
// messages on subscribe, a session's own filters on read-back) where building a trie is not
// worth it. Same rules as TopicTrie.match, which the property tests hold both to.
import { startsWithDollar } from './topic-name.js';

export function filterMatches(filter: string, topicName: string): boolean {
  // MQTT-4.7.2-1: a leading wildcard does not match a '$' topic.
  if (startsWithDollar(topicName) && (filter.charCodeAt(0) === 0x2b || filter.charCodeAt(0) === 0x23)) return false;
  const filterLevels = filter.split('/');
  const nameLevels = topicName.split('/');
  for (let i = 0; i < filterLevels.length; i += 1) {
    const level = filterLevels[i];
    if (level === '#') return true;
    if (i >= nameLevels.length) return false;
    if (level !== '+' && level !== nameLevels[i]) return false;
  }
  return filterLevels.length === nameLevels.length;
}
