import assert from 'node:assert/strict';

/** The `code` a promise rejects with; fails the test when it resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  assert.fail('expected a rejection');
}
