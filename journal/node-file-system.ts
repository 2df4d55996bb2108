// The journal's file system on the real disk: Node's fs/promises, whose FileHandle already has
// the JournalFile methods.
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import type { JournalFile, JournalFileSystem } from './file-system.js';

export const nodeFileSystem: JournalFileSystem = {
  open: (path, mode): Promise<JournalFile> => open(path, mode),
  readdir: (path) => readdir(path),
  readFile: (path) => readFile(path),
  writeFile: (path, data) => writeFile(path, data),
  rename: (from, to) => rename(from, to),
  link: (from, to) => link(from, to),
  unlink: (path) => unlink(path),
  mkdir: async (path, options) => {
    await mkdir(path, options);
  },
  rm: (path, options) => rm(path, options),
  stat: (path) => stat(path),
  async syncDirectory(path) {
    let handle: FileHandle | null = null;
    try {
      handle = await open(path, 'r');
      await handle.sync();
    } finally {
      await handle?.close();
    }
  },
};
