// engine/'s entry for test code outside the layer: the public entry plus the projection codecs
// and record builders that property tests drive directly. Running code imports engine/index.js.
export * from './index.js';
export { retainedStoreCodec } from './retained/retained-store.js';
export { publishKeyRecord, sessionTableCodec } from './sessions/session-events.js';
export { cursorsByName } from './sessions/shard-cursors.js';
