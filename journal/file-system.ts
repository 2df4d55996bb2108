// Every file operation of the journal goes through this interface, so tests can run the same
// journal code over a simulated disk that loses unsynced writes on a power cut (see
// journal/sim/simulated-disk.ts). The real implementation hands out Node's own FileHandle,
// which has these methods already: the hot path (writev, datasync, read) pays no wrapper.

/** An open file. Positions are absolute; nothing here moves a file cursor. */
export interface JournalFile {
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** fdatasync: the file's data (and its size) are durable when this resolves. */
  datasync(): Promise<void>;
  /** fsync: data and metadata. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  readFile(): Promise<Buffer>;
  writeFile(data: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** r: read; r+: read and write; w / w+: create or empty, then write (and read). */
export type OpenMode = 'r' | 'r+' | 'w' | 'w+';

export interface FileStat {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

/**
 * The file system calls the journal makes. Errors are Node's: an Error with an errno `code`
 * (ENOENT, EEXIST, ENOSPC, EIO, ...). Creates, renames and deletes are durable only once the
 * directory that holds them is synced (syncDirectory), as on a real POSIX file system.
 */
export interface JournalFileSystem {
  open(path: string, mode: OpenMode): Promise<JournalFile>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  /** Creates or replaces the file's content (not synced). */
  writeFile(path: string, data: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** A hard link; EEXIST when `to` exists (the lock file relies on it). */
  link(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Removes a file or a directory tree; with `force`, a missing path is no error. */
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  stat(path: string): Promise<FileStat>;
  /** fsync of a directory: makes the creates, renames and deletes in it durable. */
  syncDirectory(path: string): Promise<void>;
}
