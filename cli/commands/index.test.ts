// The command table lists each command's words and summary without loading its module; the
// module's command must carry the same ones, or `shardline --help` would describe a command
// differently from its own --help and the CLI would run a command under another name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commands } from './index.js';

describe('command table', () => {
  for (const entry of commands) {
    it(`shardline ${entry.path.join(' ')}: the module's command has the table's words and summary`, async () => {
      const command = await entry.load();
      assert.deepEqual(command.path, entry.path);
      assert.equal(command.summary, entry.summary);
    });
  }

  it('names each command once', () => {
    const paths = commands.map((entry) => entry.path.join(' '));
    assert.deepEqual(paths, [...new Set(paths)]);
  });
});
