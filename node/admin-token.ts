// The admin API's bearer token: given, kept in the data directory, or made for one run.
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** The admin token's file in the data directory. */
export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The admin API's bearer token. A given one (flag, SHARDLINE_ADMIN_TOKEN, config file) is used
 * and never logged. Otherwise a node with a data directory keeps it in DATA-DIR/admin-token:
 * read when there, else created (0600, 32 random bytes, base64url) and logged once, so the
 * operator can copy it and later starts keep the same one. A broker-only node has no directory
 * to keep it in: it makes one per start and logs it.
 */
export async function adminToken(given: string | undefined, dataDir: string | undefined, logger: Logger): Promise<string> {
  if (given !== undefined) return given;
  const created = (): string => randomBytes(32).toString('base64url');
  if (dataDir === undefined) {
    const token = created();
    logger.info(`admin token created: ${token} (for this run only: a broker-only node keeps no data directory; set admin-token to keep one)`);
    return token;
  }
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the admin token file ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) {
    const token = created();
    // 'wx': never overwrite a token file that appeared meanwhile (the journal lock makes that
    // unlikely, but a silently replaced token would lock out whoever holds the old one).
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    logger.info({ adminTokenFile: file }, `admin token created: ${token} (kept in ${file}; it is not logged again)`);
    return token;
  }
  const token = text.trim();
  if (token === '') throw new Error(`the admin token file ${file} is empty; put a token in it, delete it to have one created, or set admin-token`);
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) logger.warn({ adminTokenFile: file }, `the admin token file ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return token;
}
