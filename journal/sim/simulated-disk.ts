// A seeded, in-memory disk behind the journal's JournalFileSystem, for property tests that cut
// power at random points. It models what ext4 (and POSIX in general) promises and no more:
// file data is durable after fsync/fdatasync of that file, a name (create, rename, unlink) only
// after fsync of its directory; unsynced writes may be lost, torn or reordered on a power cut;
// and a failed fsync loses the pages it failed to write for good (Linux marks them clean).
// Every operation does its work synchronously when called and resolves in a microtask, so the
// interleaving of a test is fixed by its code and its seed alone.
import { posix } from 'node:path';
import { fnv1aBytes } from '../../base/index.js';
import type { FileStat, JournalFile, JournalFileSystem, OpenMode } from '../file-system.js';
import { mulberry32, type Random } from './mulberry32.js';

export type FaultCode = 'EIO' | 'ENOSPC';

export type DiskOperation =
  | 'open'
  | 'readdir'
  | 'readFile'
  | 'writeFile'
  | 'rename'
  | 'link'
  | 'unlink'
  | 'mkdir'
  | 'rm'
  | 'stat'
  | 'syncDirectory'
  | 'writev'
  | 'write'
  | 'read'
  | 'datasync'
  | 'sync'
  | 'truncate'
  | 'fstat'
  | 'handleReadFile'
  | 'handleWriteFile'
  | 'close';

export interface FaultRule {
  operation?: DiskOperation | DiskOperation[];
  pathIncludes?: string;
  code: FaultCode;
  /** how many matching calls fail; default 1 */
  times?: number;
  /** how many matching calls succeed before the first failure; default 0 */
  after?: number;
}

export interface RandomFaults {
  probability: number;
  codes: FaultCode[];
  operations?: DiskOperation[];
}

/** The operations random faults hit unless told otherwise: the ones that change or sync the disk. */
export const MUTATING_OPERATIONS: readonly DiskOperation[] = [
  'writeFile',
  'rename',
  'link',
  'unlink',
  'mkdir',
  'rm',
  'syncDirectory',
  'writev',
  'write',
  'datasync',
  'sync',
  'truncate',
  'handleWriteFile',
];

const ERRNO: Record<string, { errno: number; text: string }> = {
  EPERM: { errno: -1, text: 'operation not permitted' },
  ENOENT: { errno: -2, text: 'no such file or directory' },
  EIO: { errno: -5, text: 'i/o error' },
  EBADF: { errno: -9, text: 'bad file descriptor' },
  EEXIST: { errno: -17, text: 'file already exists' },
  ENOTDIR: { errno: -20, text: 'not a directory' },
  EISDIR: { errno: -21, text: 'illegal operation on a directory' },
  EINVAL: { errno: -22, text: 'invalid argument' },
  ENOSPC: { errno: -28, text: 'no space left on device' },
  ENOTEMPTY: { errno: -39, text: 'directory not empty' },
};

const SYSCALL: Record<DiskOperation, string> = {
  open: 'open',
  readdir: 'scandir',
  readFile: 'open',
  writeFile: 'open',
  rename: 'rename',
  link: 'link',
  unlink: 'unlink',
  mkdir: 'mkdir',
  rm: 'rm',
  stat: 'stat',
  syncDirectory: 'fsync',
  writev: 'writev',
  write: 'write',
  read: 'read',
  datasync: 'fdatasync',
  sync: 'fsync',
  truncate: 'ftruncate',
  fstat: 'fstat',
  handleReadFile: 'read',
  handleWriteFile: 'write',
  close: 'close',
};

type ErrorCode = keyof typeof ERRNO;

/** An error shaped like the ones Node's fs raises, so journal code cannot tell them apart. */
export function diskError(code: ErrorCode, operation: DiskOperation, path: string, dest?: string): NodeJS.ErrnoException {
  const info = ERRNO[code] ?? { errno: -5, text: 'i/o error' };
  const syscall = SYSCALL[operation];
  const where = dest === undefined ? `'${path}'` : `'${path}' -> '${dest}'`;
  const error: NodeJS.ErrnoException = Object.assign(new Error(`${code}: ${info.text}, ${syscall} ${where}`), {
    code,
    errno: info.errno,
    syscall,
    path,
  });
  if (dest !== undefined) Object.assign(error, { dest });
  return error;
}

/** Growable bytes whose tail past `length` is kept zero, so growing a file zero-fills the gap. */
class Bytes {
  private buffer: Buffer;
  length: number;

  constructor(initial?: Buffer) {
    this.buffer = Buffer.alloc(Math.max(64, initial?.length ?? 0));
    this.length = 0;
    if (initial !== undefined) this.write(0, initial);
  }

  view(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  clone(): Bytes {
    return new Bytes(this.view());
  }

  write(position: number, data: Buffer): void {
    const end = position + data.length;
    if (end > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(end, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    data.copy(this.buffer, position);
    this.length = Math.max(this.length, end);
  }

  truncate(length: number): void {
    if (length > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(length, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    } else if (length < this.length) {
      this.buffer.fill(0, length, this.length);
    }
    this.length = length;
  }
}

/** A write or truncate not yet synced; a write is doomed once a sync of the file failed with it pending. */
type FileOp = { kind: 'write'; position: number; data: Buffer; doomed: boolean } | { kind: 'truncate'; length: number; doomed: boolean };

interface FileInode {
  kind: 'file';
  id: number;
  visible: Bytes;
  durable: Bytes;
  pending: FileOp[];
}

/** One directory entry change: `inode` null removes the name. */
interface EntryOp {
  name: string;
  inode: number | null;
}

interface DirInode {
  kind: 'dir';
  id: number;
  visible: Map<string, number>;
  durable: Map<string, number>;
  /** Groups of entry changes; a group reaches the disk whole or not at all (an atomic rename). */
  pending: EntryOp[][];
}

type Inode = FileInode | DirInode;

interface OpenHandle {
  inode: Inode;
  path: string;
  readable: boolean;
  writable: boolean;
  closed: boolean;
}

const ROOT = 0;

function applyFileOp(bytes: Bytes, op: FileOp): void {
  if (op.kind === 'write') bytes.write(op.position, op.data);
  else bytes.truncate(op.length);
}

function normalize(path: string): string {
  return posix.resolve('/', path);
}

/** FNV-1a, only to let describe() tell contents apart. */
function fingerprint(data: Buffer): string {
  return fnv1aBytes(data).toString(16).padStart(8, '0');
}

export class SimulatedDisk {
  private readonly random: Random;
  private readonly capacityBytes: number | undefined;
  private inodes = new Map<number, Inode>();
  private nextInode = ROOT + 1;
  private boot = 0;
  private on = true;
  private handles = new Set<OpenHandle>();
  private cutCountdown: number | null = null;
  private readonly rules: FaultRule[] = [];
  private randomFaults: RandomFaults | null = null;
  private operations = 0;

  constructor(options: { seed: number; capacityBytes?: number }) {
    this.random = mulberry32(options.seed);
    this.capacityBytes = options.capacityBytes;
    this.inodes.set(ROOT, { kind: 'dir', id: ROOT, visible: new Map(), durable: new Map(), pending: [] });
  }

  get powerIsOn(): boolean {
    return this.on;
  }

  get operationCount(): number {
    return this.operations;
  }

  /** The file system of the current boot; after a cut, the first mount() powers the machine on. */
  mount(): JournalFileSystem {
    this.on = true;
    return this.fileSystem(this.boot);
  }

  powerCut(): void {
    if (!this.on) return;
    for (const inode of this.inodes.values()) {
      if (inode.kind === 'file') this.persistSomeOf(inode);
      else this.persistSomeEntriesOf(inode);
    }
    const survivors = new Map<number, Inode>();
    const walk = (id: number): void => {
      const inode = this.inodes.get(id);
      if (inode === undefined || survivors.has(id)) return;
      survivors.set(id, inode);
      if (inode.kind === 'dir') for (const child of inode.durable.values()) walk(child);
    };
    walk(ROOT);
    for (const inode of survivors.values()) {
      if (inode.kind === 'file') inode.visible = inode.durable.clone();
      else inode.visible = new Map(inode.durable);
      inode.pending = [];
    }
    // Keep creation order, which fixes the order of later PRNG draws.
    this.inodes = new Map([...this.inodes].filter(([id]) => survivors.has(id)));
    this.handles = new Set();
    this.cutCountdown = null;
    this.boot += 1;
    this.on = false;
  }

  powerCutAfterOperations(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`powerCutAfterOperations needs n >= 1, got ${n}`);
    this.cutCountdown = n;
  }

  injectFault(rule: FaultRule): void {
    this.rules.push({ ...rule, times: rule.times ?? 1 });
  }

  /** Drops every injected fault rule not yet used up (a test's faults end where it says). */
  clearFaults(): void {
    this.rules.length = 0;
  }

  setRandomFaults(options: RandomFaults | null): void {
    this.randomFaults = options === null ? null : { ...options, codes: [...options.codes] };
  }

  describe(): string {
    const lines = [`boot ${this.boot} power ${this.on ? 'on' : 'off'} operations ${this.operations}`];
    const visit = (id: number, path: string, seen: Set<number>): void => {
      const inode = this.inodes.get(id);
      if (inode === undefined || seen.has(id)) return;
      seen.add(id);
      if (inode.kind === 'file') {
        const doomed = inode.pending.filter((op) => op.doomed).length;
        lines.push(
          `${path} file #${id} size ${inode.visible.length} (${fingerprint(inode.visible.view())}) durable ${inode.durable.length} (${fingerprint(inode.durable.view())}) pending ${inode.pending.length} doomed ${doomed}`,
        );
        return;
      }
      const names = new Set([...inode.visible.keys(), ...inode.durable.keys()]);
      const differing = [...names].filter((name) => inode.visible.get(name) !== inode.durable.get(name)).sort();
      const unnamed = differing.length > 0 ? ` not durable as seen [${differing.join(', ')}]` : '';
      lines.push(`${path} dir #${id} entries ${inode.visible.size} pending groups ${inode.pending.length}${unnamed}`);
      for (const name of [...inode.visible.keys()].sort()) visit(inode.visible.get(name) as number, posix.join(path, name), seen);
    };
    visit(ROOT, '/', new Set());
    return lines.join('\n');
  }

  // ---- power cut choices ----

  private persistSomeOf(file: FileInode): void {
    const candidates = file.pending.filter((op) => !op.doomed);
    file.pending = [];
    if (candidates.length === 0) return;
    let kept: FileOp[];
    switch (this.random.int(4)) {
      case 0:
        kept = [];
        break;
      case 1:
        kept = candidates.slice(0, this.random.int(candidates.length + 1));
        break;
      case 2: {
        const torn = this.random.int(candidates.length);
        kept = candidates.slice(0, torn);
        const op = candidates[torn];
        if (op !== undefined && op.kind === 'write' && op.data.length > 0) {
          kept.push({ ...op, data: op.data.subarray(0, this.random.int(op.data.length)) });
        }
        break;
      }
      default:
        // Writeback order is not program order: any subset may have reached the platter.
        kept = candidates.filter(() => this.random.next() < 0.5);
    }
    for (const op of kept) applyFileOp(file.durable, op);
  }

  private persistSomeEntriesOf(dir: DirInode): void {
    const groups = dir.pending;
    dir.pending = [];
    if (groups.length === 0) return;
    for (const group of groups.slice(0, this.random.int(groups.length + 1))) applyEntryGroup(dir.durable, group);
  }

  // ---- the start of every operation ----

  /** Counts the operation, enforces the boot and the scheduled cut, and decides a fault. */
  private begin(boot: number, operation: DiskOperation, path: string, handle?: OpenHandle, otherPath?: string): FaultCode | null {
    this.operations += 1;
    if (!this.on || boot !== this.boot) throw diskError('EIO', operation, path, otherPath);
    if (this.cutCountdown !== null) {
      this.cutCountdown -= 1;
      if (this.cutCountdown === 0) {
        this.powerCut();
        throw diskError('EIO', operation, path, otherPath);
      }
    }
    if (handle?.closed) throw diskError('EBADF', operation, path);
    const matches = (candidate: string | undefined, part: string): boolean => candidate !== undefined && candidate.includes(part);
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i] as FaultRule;
      const operations = rule.operation === undefined ? null : Array.isArray(rule.operation) ? rule.operation : [rule.operation];
      if (operations !== null && !operations.includes(operation)) continue;
      if (rule.pathIncludes !== undefined && !matches(path, rule.pathIncludes) && !matches(otherPath, rule.pathIncludes)) continue;
      if ((rule.after ?? 0) > 0) {
        rule.after = (rule.after ?? 0) - 1;
        continue;
      }
      rule.times = (rule.times ?? 1) - 1;
      if (rule.times <= 0) this.rules.splice(i, 1);
      return rule.code;
    }
    const random = this.randomFaults;
    if (random !== null && random.codes.length > 0 && (random.operations ?? MUTATING_OPERATIONS).includes(operation)) {
      if (this.random.next() < random.probability) return random.codes[this.random.int(random.codes.length)] ?? null;
    }
    return null;
  }

  // ---- the tree ----

  private lookup(path: string, operation: DiskOperation): Inode {
    let inode = this.inodes.get(ROOT) as Inode;
    for (const part of path.split('/').filter((p) => p !== '')) {
      if (inode.kind !== 'dir') throw diskError('ENOTDIR', operation, path);
      const child = inode.visible.get(part);
      if (child === undefined) throw diskError('ENOENT', operation, path);
      inode = this.inodes.get(child) as Inode;
    }
    return inode;
  }

  private tryLookup(path: string): Inode | undefined {
    try {
      return this.lookup(path, 'stat');
    } catch {
      return undefined;
    }
  }

  private parentOf(path: string, operation: DiskOperation): { dir: DirInode; name: string } {
    if (path === '/') throw diskError('EINVAL', operation, path);
    const parent = this.lookup(posix.dirname(path), operation);
    if (parent.kind !== 'dir') throw diskError('ENOTDIR', operation, path);
    return { dir: parent, name: posix.basename(path) };
  }

  private changeEntries(dir: DirInode, group: EntryOp[]): void {
    applyEntryGroup(dir.visible, group);
    dir.pending.push(group);
  }

  private createFile(dir: DirInode, name: string): FileInode {
    const file: FileInode = { kind: 'file', id: this.nextInode++, visible: new Bytes(), durable: new Bytes(), pending: [] };
    this.inodes.set(file.id, file);
    this.changeEntries(dir, [{ name, inode: file.id }]);
    return file;
  }

  private isWithin(ancestor: DirInode, id: number): boolean {
    if (ancestor.id === id) return true;
    for (const child of ancestor.visible.values()) {
      const inode = this.inodes.get(child);
      if (inode?.kind === 'dir' && this.isWithin(inode, id)) return true;
    }
    return false;
  }

  // ---- data ----

  private usedBytes(): number {
    const counted = new Set<number>();
    let total = 0;
    const count = (inode: Inode): void => {
      if (counted.has(inode.id)) return;
      counted.add(inode.id);
      if (inode.kind === 'file') total += inode.visible.length;
      else for (const child of inode.visible.values()) count(this.inodes.get(child) as Inode);
    };
    count(this.inodes.get(ROOT) as Inode);
    // An unlinked file held open still occupies its blocks.
    for (const handle of this.handles) if (!handle.closed) count(handle.inode);
    return total;
  }

  /** How many of `length` bytes at `position` fit on the disk. */
  private bytesThatFit(file: FileInode, position: number, length: number): number {
    if (this.capacityBytes === undefined) return length;
    const room = this.capacityBytes - this.usedBytes();
    return Math.max(0, Math.min(length, file.visible.length + room - position));
  }

  private writeData(file: FileInode, position: number, data: Buffer): void {
    if (data.length === 0) return;
    const op: FileOp = { kind: 'write', position, data: Buffer.from(data), doomed: false };
    applyFileOp(file.visible, op);
    file.pending.push(op);
  }

  private truncateData(file: FileInode, length: number): void {
    const op: FileOp = { kind: 'truncate', length, doomed: false };
    applyFileOp(file.visible, op);
    file.pending.push(op);
  }

  /**
   * Writes `data` at `position` as a disk with `fault` would: an injected ENOSPC writes a random
   * prefix first, a full disk writes what fits. Returns the bytes written, or throws.
   */
  private writeWithFaults(
    file: FileInode,
    position: number,
    data: Buffer,
    fault: FaultCode | null,
    operation: DiskOperation,
    path: string,
    mayReturnShort: boolean,
  ): number {
    if (fault === 'EIO') throw diskError('EIO', operation, path);
    const wanted = fault === 'ENOSPC' ? this.random.int(data.length) : data.length;
    const fits = this.bytesThatFit(file, position, wanted);
    this.writeData(file, position, data.subarray(0, fits));
    if (fault === 'ENOSPC') throw diskError('ENOSPC', operation, path);
    if (fits < data.length) {
      // A full disk: Linux returns a short count while any byte went in, ENOSPC once none does.
      if (mayReturnShort && fits > 0 && this.random.next() < 0.5) return fits;
      throw diskError('ENOSPC', operation, path);
    }
    return fits;
  }

  private syncFile(file: FileInode, fault: FaultCode | null, operation: DiskOperation, path: string): void {
    if (fault !== null) {
      // Linux reports the writeback error once and marks the pages clean: the data stays in the
      // page cache (readable) but no later fsync writes it, and a crash loses it. A truncate is
      // not a page but a size change in the inode, which the file system's own journal commits
      // with the next successful fsync, so it stays pending.
      for (const op of file.pending) if (op.kind === 'write') op.doomed = true;
      throw diskError(fault, operation, path);
    }
    for (const op of file.pending) if (!op.doomed) applyFileOp(file.durable, op);
    file.pending = [];
  }

  private syncDir(dir: DirInode): void {
    for (const group of dir.pending) applyEntryGroup(dir.durable, group);
    dir.pending = [];
  }

  // ---- the interfaces ----

  private fileSystem(boot: number): JournalFileSystem {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the mount's methods close over their disk
    const disk = this;
    const fail = (fault: FaultCode | null, operation: DiskOperation, path: string, dest?: string): void => {
      if (fault !== null) throw diskError(fault, operation, path, dest);
    };
    const statOf = (inode: Inode): FileStat => ({
      size: inode.kind === 'file' ? inode.visible.length : 4096,
      isFile: () => inode.kind === 'file',
      isDirectory: () => inode.kind === 'dir',
    });
    return {
      async open(rawPath: string, mode: OpenMode): Promise<JournalFile> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'open', path), 'open', path);
        const writable = mode !== 'r';
        let inode = disk.tryLookup(path);
        if (inode === undefined) {
          if (mode === 'r' || mode === 'r+') disk.lookup(path, 'open');
          const { dir, name } = disk.parentOf(path, 'open');
          inode = disk.createFile(dir, name);
        } else if (inode.kind === 'dir') {
          if (writable) throw diskError('EISDIR', 'open', path);
        } else if (mode === 'w' || mode === 'w+') {
          disk.truncateData(inode, 0);
        }
        const handle: OpenHandle = { inode, path, readable: mode !== 'w', writable, closed: false };
        disk.handles.add(handle);
        return disk.file(boot, handle);
      },

      async readdir(rawPath: string): Promise<string[]> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'readdir', path), 'readdir', path);
        const inode = disk.lookup(path, 'readdir');
        if (inode.kind !== 'dir') throw diskError('ENOTDIR', 'readdir', path);
        return [...inode.visible.keys()].sort();
      },

      async readFile(rawPath: string): Promise<Buffer> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'readFile', path), 'readFile', path);
        const inode = disk.lookup(path, 'readFile');
        if (inode.kind !== 'file') throw diskError('EISDIR', 'read', path);
        return Buffer.from(inode.visible.view());
      },

      async writeFile(rawPath: string, data: Buffer): Promise<void> {
        const path = normalize(rawPath);
        const fault = disk.begin(boot, 'writeFile', path);
        if (fault === 'EIO') throw diskError('EIO', 'writeFile', path);
        let inode = disk.tryLookup(path);
        if (inode === undefined) {
          const { dir, name } = disk.parentOf(path, 'writeFile');
          inode = disk.createFile(dir, name);
        } else if (inode.kind === 'dir') {
          throw diskError('EISDIR', 'writeFile', path);
        } else {
          disk.truncateData(inode, 0);
        }
        disk.writeWithFaults(inode, 0, data, fault, 'writeFile', path, false);
      },

      async rename(rawFrom: string, rawTo: string): Promise<void> {
        const from = normalize(rawFrom);
        const to = normalize(rawTo);
        fail(disk.begin(boot, 'rename', from, undefined, to), 'rename', from, to);
        const source = disk.lookup(from, 'rename');
        const origin = disk.parentOf(from, 'rename');
        const target = disk.parentOf(to, 'rename');
        if (from === to) return;
        const existing = disk.tryLookup(to);
        if (source.kind === 'dir') {
          if (disk.isWithin(source, target.dir.id)) throw diskError('EINVAL', 'rename', from, to);
          if (existing?.kind === 'file') throw diskError('ENOTDIR', 'rename', from, to);
          if (existing?.kind === 'dir' && existing.visible.size > 0) throw diskError('ENOTEMPTY', 'rename', from, to);
        } else if (existing?.kind === 'dir') {
          throw diskError('EISDIR', 'rename', from, to);
        }
        if (existing?.id === source.id) return; // two links to one inode: POSIX does nothing
        const set: EntryOp = { name: target.name, inode: source.id };
        const remove: EntryOp = { name: origin.name, inode: null };
        if (origin.dir === target.dir) {
          disk.changeEntries(origin.dir, [set, remove]);
        } else {
          disk.changeEntries(target.dir, [set]);
          disk.changeEntries(origin.dir, [remove]);
        }
      },

      async link(rawFrom: string, rawTo: string): Promise<void> {
        const from = normalize(rawFrom);
        const to = normalize(rawTo);
        fail(disk.begin(boot, 'link', from, undefined, to), 'link', from, to);
        const source = disk.lookup(from, 'link');
        if (source.kind === 'dir') throw diskError('EPERM', 'link', from, to);
        const { dir, name } = disk.parentOf(to, 'link');
        if (dir.visible.has(name)) throw diskError('EEXIST', 'link', from, to);
        disk.changeEntries(dir, [{ name, inode: source.id }]);
      },

      async unlink(rawPath: string): Promise<void> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'unlink', path), 'unlink', path);
        const inode = disk.lookup(path, 'unlink');
        if (inode.kind === 'dir') throw diskError('EISDIR', 'unlink', path);
        const { dir, name } = disk.parentOf(path, 'unlink');
        disk.changeEntries(dir, [{ name, inode: null }]);
      },

      async mkdir(rawPath: string, options?: { recursive?: boolean }): Promise<void> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'mkdir', path), 'mkdir', path);
        const recursive = options?.recursive === true;
        const existing = disk.tryLookup(path);
        if (existing !== undefined) {
          if (recursive && existing.kind === 'dir') return;
          throw diskError('EEXIST', 'mkdir', path);
        }
        if (recursive && posix.dirname(path) !== path && disk.tryLookup(posix.dirname(path)) === undefined) {
          // Each missing ancestor is its own entry op on its own parent, as separate mkdir calls.
          const parts = path.split('/').filter((p) => p !== '');
          for (let i = 1; i < parts.length; i++) {
            const ancestor = `/${parts.slice(0, i).join('/')}`;
            const inode = disk.tryLookup(ancestor);
            if (inode === undefined) disk.makeDirectory(ancestor);
            else if (inode.kind !== 'dir') throw diskError('ENOTDIR', 'mkdir', path);
          }
        }
        disk.makeDirectory(path);
      },

      async rm(rawPath: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'rm', path), 'rm', path);
        const inode = disk.tryLookup(path);
        if (inode === undefined) {
          if (options?.force === true) return;
          disk.lookup(path, 'rm');
          return;
        }
        if (inode.kind === 'dir' && options?.recursive !== true) throw diskError('EISDIR', 'rm', path);
        const { dir, name } = disk.parentOf(path, 'rm');
        // The subtree goes with its name: one entry op on the parent.
        disk.changeEntries(dir, [{ name, inode: null }]);
      },

      async stat(rawPath: string): Promise<FileStat> {
        const path = normalize(rawPath);
        fail(disk.begin(boot, 'stat', path), 'stat', path);
        return statOf(disk.lookup(path, 'stat'));
      },

      async syncDirectory(rawPath: string): Promise<void> {
        const path = normalize(rawPath);
        const fault = disk.begin(boot, 'syncDirectory', path);
        const inode = disk.lookup(path, 'syncDirectory');
        fail(fault, 'syncDirectory', path);
        if (inode.kind !== 'dir') throw diskError('ENOTDIR', 'syncDirectory', path);
        disk.syncDir(inode);
      },
    };
  }

  private makeDirectory(path: string): void {
    const { dir, name } = this.parentOf(path, 'mkdir');
    const made: DirInode = { kind: 'dir', id: this.nextInode++, visible: new Map(), durable: new Map(), pending: [] };
    this.inodes.set(made.id, made);
    this.changeEntries(dir, [{ name, inode: made.id }]);
  }

  private file(boot: number, handle: OpenHandle): JournalFile {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the handle's methods close over their disk
    const disk = this;
    const path = handle.path;
    const writableFile = (operation: DiskOperation): FileInode => {
      if (!handle.writable) throw diskError('EBADF', operation, path);
      if (handle.inode.kind !== 'file') throw diskError('EISDIR', operation, path);
      return handle.inode;
    };
    const readableFile = (operation: DiskOperation): FileInode => {
      if (!handle.readable) throw diskError('EBADF', operation, path);
      if (handle.inode.kind !== 'file') throw diskError('EISDIR', operation, path);
      return handle.inode;
    };
    const sync = (operation: 'datasync' | 'sync'): void => {
      const fault = disk.begin(boot, operation, path, handle);
      if (handle.inode.kind === 'dir') {
        if (fault !== null) throw diskError(fault, operation, path);
        disk.syncDir(handle.inode);
        return;
      }
      disk.syncFile(handle.inode, fault, operation, path);
    };
    return {
      async writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }> {
        const fault = disk.begin(boot, 'writev', path, handle);
        const file = writableFile('writev');
        const bytesWritten = disk.writeWithFaults(file, position, Buffer.concat(buffers), fault, 'writev', path, true);
        return { bytesWritten };
      },

      async write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
        const fault = disk.begin(boot, 'write', path, handle);
        const file = writableFile('write');
        const data = buffer.subarray(offset, offset + length);
        return { bytesWritten: disk.writeWithFaults(file, position, data, fault, 'write', path, false) };
      },

      async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
        const fault = disk.begin(boot, 'read', path, handle);
        const file = readableFile('read');
        if (fault !== null) throw diskError(fault, 'read', path);
        const content = file.visible.view();
        const start = Math.min(position, content.length);
        const bytesRead = content.copy(buffer, offset, start, Math.min(content.length, start + length));
        return { bytesRead };
      },

      async datasync(): Promise<void> {
        sync('datasync');
      },

      async sync(): Promise<void> {
        sync('sync');
      },

      async truncate(length: number): Promise<void> {
        const fault = disk.begin(boot, 'truncate', path, handle);
        const file = writableFile('truncate');
        if (fault !== null) throw diskError(fault, 'truncate', path);
        if (length > file.visible.length && disk.bytesThatFit(file, file.visible.length, length - file.visible.length) < length - file.visible.length) {
          throw diskError('ENOSPC', 'truncate', path);
        }
        disk.truncateData(file, length);
      },

      async stat(): Promise<{ size: number }> {
        const fault = disk.begin(boot, 'fstat', path, handle);
        if (fault !== null) throw diskError(fault, 'fstat', path);
        const inode = handle.inode;
        return {
          size: inode.kind === 'file' ? inode.visible.length : 4096,
          isFile: () => inode.kind === 'file',
          isDirectory: () => inode.kind === 'dir',
        } as FileStat;
      },

      async readFile(): Promise<Buffer> {
        const fault = disk.begin(boot, 'handleReadFile', path, handle);
        const file = readableFile('handleReadFile');
        if (fault !== null) throw diskError(fault, 'handleReadFile', path);
        return Buffer.from(file.visible.view());
      },

      async writeFile(data: Buffer): Promise<void> {
        // Node writes from the handle's cursor, which positional writes never move: offset 0,
        // without truncating (a 'w' handle was emptied when it was opened).
        const fault = disk.begin(boot, 'handleWriteFile', path, handle);
        const file = writableFile('handleWriteFile');
        disk.writeWithFaults(file, 0, data, fault, 'handleWriteFile', path, false);
      },

      async close(): Promise<void> {
        const fault = disk.begin(boot, 'close', path, handle);
        // Linux releases the descriptor even when close reports an error.
        handle.closed = true;
        disk.handles.delete(handle);
        if (fault !== null) throw diskError(fault, 'close', path);
      },
    };
  }
}

function applyEntryGroup(entries: Map<string, number>, group: EntryOp[]): void {
  for (const op of group) {
    if (op.inode === null) entries.delete(op.name);
    else entries.set(op.name, op.inode);
  }
}
