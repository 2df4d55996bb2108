// The simulated disk (simulated-disk.ts).
//
// Goal: the disk the journal's crash tests run on loses exactly what ext4 may lose and nothing
// it must keep: synced data and synced names survive every cut; unsynced data and names may be
// dropped, torn or reordered; a failed fsync loses its pages for good; faults, capacity and the
// end of a boot behave like Node's fs on Linux; and a seed replays exactly.
// Method: small scripted scenarios per rule; for the random outcomes, loop over seeds and
// assert both that the loss happens for some seed and that the guarantee holds for all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JournalFileSystem } from '../file-system.js';
import { SimulatedDisk } from './simulated-disk.js';

const SEEDS = 200;

async function exists(fs: JournalFileSystem, path: string): Promise<boolean> {
  try {
    await fs.stat(path);
    return true;
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ENOENT');
    return false;
  }
}

/** A disk with a durable /data directory. */
async function diskWithData(seed: number, capacityBytes?: number): Promise<{ disk: SimulatedDisk; fs: JournalFileSystem }> {
  const disk = new SimulatedDisk(capacityBytes === undefined ? { seed } : { seed, capacityBytes });
  const fs = disk.mount();
  await fs.mkdir('/data');
  await fs.syncDirectory('/');
  return { disk, fs };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, code, `expected ${code}, got ${String(error.code)}: ${error.message}`);
    return true;
  });
}

describe('SimulatedDisk: POSIX behaviour', () => {
  it('reports ENOENT, EEXIST, ENOTDIR, EISDIR and EBADF like Node, with errno, syscall and path', async () => {
    const disk = new SimulatedDisk({ seed: 1 });
    const fs = disk.mount();
    await assert.rejects(fs.readFile('/missing'), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'ENOENT');
      assert.equal(error.errno, -2);
      assert.equal(error.path, '/missing');
      assert.match(error.message, /^ENOENT: .*'\/missing'$/);
      return true;
    });
    await rejectsWith(fs.open('/missing', 'r'), 'ENOENT');
    await rejectsWith(fs.open('/nodir/f', 'w'), 'ENOENT');
    await fs.mkdir('/data');
    await rejectsWith(fs.mkdir('/data'), 'EEXIST');
    await fs.mkdir('/data', { recursive: true });
    await rejectsWith(fs.mkdir('/a/b'), 'ENOENT');
    await fs.mkdir('/a/b/c', { recursive: true });
    assert.ok((await fs.stat('/a/b/c')).isDirectory());
    await fs.writeFile('/data/f', Buffer.from('x'));
    await rejectsWith(fs.link('/data/f', '/data/f'), 'EEXIST');
    await rejectsWith(fs.readdir('/data/f'), 'ENOTDIR');
    await rejectsWith(fs.open('/data/f/g', 'w'), 'ENOTDIR');
    await rejectsWith(fs.readFile('/data'), 'EISDIR');
    await rejectsWith(fs.open('/data', 'w'), 'EISDIR');
    await rejectsWith(fs.unlink('/data'), 'EISDIR');
    const reader = await fs.open('/data/f', 'r');
    await rejectsWith(reader.write(Buffer.from('y'), 0, 1, 0), 'EBADF');
    await reader.close();
    await rejectsWith(reader.stat(), 'EBADF');
    await rejectsWith(reader.close(), 'EBADF');
  });

  it('reads what was written, zero-fills gaps, truncates, sorts readdir, links and renames', async () => {
    const disk = new SimulatedDisk({ seed: 2 });
    const fs = disk.mount();
    await fs.mkdir('/d');
    const file = await fs.open('/d/b', 'w+');
    await file.write(Buffer.from('hello'), 0, 5, 0);
    await file.writev([Buffer.from('ab'), Buffer.from('cd')], 8);
    assert.deepEqual(await file.readFile(), Buffer.from('hello\0\0\0abcd'));
    const buffer = Buffer.alloc(4);
    assert.deepEqual(await file.read(buffer, 0, 4, 10), { bytesRead: 2 });
    assert.deepEqual(buffer.subarray(0, 2), Buffer.from('cd'));
    await file.truncate(3);
    assert.equal((await file.stat()).size, 3);
    await file.truncate(5);
    assert.deepEqual(await fs.readFile('/d/b'), Buffer.from('hel\0\0'));
    await file.close();
    await fs.writeFile('/d/c', Buffer.from('c'));
    await fs.writeFile('/d/a', Buffer.from('a'));
    assert.deepEqual(await fs.readdir('/d'), ['a', 'b', 'c']);
    await fs.link('/d/a', '/d/a2');
    await fs.rename('/d/c', '/d/a'); // replaces a; a2 still names the old inode
    assert.deepEqual(await fs.readdir('/d'), ['a', 'a2', 'b']);
    assert.deepEqual(await fs.readFile('/d/a'), Buffer.from('c'));
    assert.deepEqual(await fs.readFile('/d/a2'), Buffer.from('a'));
    await fs.writeFile('/d/a', Buffer.from('new'));
    assert.deepEqual(await fs.readFile('/d/a'), Buffer.from('new'));
    const truncating = await fs.open('/d/a', 'w');
    assert.equal((await truncating.stat()).size, 0);
    await rejectsWith(truncating.readFile(), 'EBADF');
    await truncating.close();
  });

  it('rm: force ignores a missing path, a tree needs recursive and goes whole', async () => {
    const disk = new SimulatedDisk({ seed: 3 });
    const fs = disk.mount();
    await fs.rm('/nothing', { force: true });
    await rejectsWith(fs.rm('/nothing'), 'ENOENT');
    await fs.mkdir('/t/u', { recursive: true });
    await fs.writeFile('/t/u/f', Buffer.from('f'));
    await rejectsWith(fs.rm('/t'), 'EISDIR');
    await fs.rm('/t', { recursive: true });
    assert.deepEqual(await fs.readdir('/'), []);
    await rejectsWith(fs.rename('/x', '/y'), 'ENOENT');
    await fs.mkdir('/p/q', { recursive: true });
    await fs.writeFile('/p/q/f', Buffer.from(''));
    await fs.mkdir('/r');
    await rejectsWith(fs.rename('/r', '/p'), 'ENOTEMPTY');
    await rejectsWith(fs.rename('/p', '/p/q/inside'), 'EINVAL');
  });
});

describe('SimulatedDisk: power cuts', () => {
  it('keeps synced data and may drop unsynced data; after the cut the visible state is the durable one', async () => {
    let dropped = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w');
      await fs.syncDirectory('/data');
      await file.write(Buffer.from('synced'), 0, 6, 0);
      await file.datasync();
      await file.write(Buffer.from('-later'), 0, 6, 6);
      assert.deepEqual(await fs.readFile('/data/f'), Buffer.from('synced-later'), 'visible before the cut');
      disk.powerCut();
      assert.equal(disk.powerIsOn, false);
      const after = disk.mount();
      assert.equal(disk.powerIsOn, true);
      const content = await after.readFile('/data/f');
      assert.deepEqual(content.subarray(0, 6), Buffer.from('synced'), `seed ${seed}\n${disk.describe()}`);
      assert.ok(Buffer.from('synced-later').subarray(0, content.length).equals(content), `seed ${seed}: ${content.toString()}`);
      if (content.length === 6) dropped++;
    }
    assert.ok(dropped > 0, 'some cut drops the unsynced write');
    assert.ok(dropped < SEEDS, 'some cut keeps (part of) the unsynced write');
  });

  it('a synced file whose directory was not synced can vanish; with the directory synced it never does', async () => {
    let vanished = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const { disk, fs } = await diskWithData(seed);
      for (const name of ['unnamed', 'named']) {
        const file = await fs.open(`/data/${name}`, 'w');
        await file.write(Buffer.from(name), 0, name.length, 0);
        await file.sync();
        await file.close();
        if (name === 'named') await fs.syncDirectory('/data');
        else await fs.writeFile('/data/zz-later', Buffer.from('z')); // a later entry op: 'unnamed' is not the only pending group
      }
      disk.powerCut();
      const after = disk.mount();
      assert.deepEqual(await after.readFile('/data/named'), Buffer.from('named'), `seed ${seed}`);
      if (!(await exists(after, '/data/unnamed'))) vanished++;
    }
    // 'unnamed' was made durable by the sync of /data after it (the entry ops are a queue).
    assert.equal(vanished, 0);

    let lost = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w');
      await file.write(Buffer.from('data'), 0, 4, 0);
      await file.sync();
      disk.powerCut();
      const after = disk.mount();
      if (await exists(after, '/data/f')) assert.deepEqual(await after.readFile('/data/f'), Buffer.from('data'));
      else lost++;
    }
    assert.ok(lost > 0 && lost < SEEDS, `lost ${lost} of ${SEEDS}`);
  });

  it('a rename without a directory sync can be lost (old name back), with one it survives; never both or neither', async () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < SEEDS; seed++) {
      for (const syncAfter of [false, true]) {
        const { disk, fs } = await diskWithData(seed);
        await fs.writeFile('/data/tmp', Buffer.from('v2'));
        const file = await fs.open('/data/tmp', 'r+');
        await file.datasync();
        await file.close();
        await fs.writeFile('/data/current', Buffer.from('v1'));
        const old = await fs.open('/data/current', 'r+');
        await old.datasync();
        await old.close();
        await fs.syncDirectory('/data');
        await fs.rename('/data/tmp', '/data/current');
        if (syncAfter) await fs.syncDirectory('/data');
        disk.powerCut();
        const after = disk.mount();
        const names = (await after.readdir('/data')).join(',');
        const current = (await after.readFile('/data/current')).toString();
        if (syncAfter) assert.deepEqual([names, current], ['current', 'v2'], `seed ${seed}`);
        else {
          assert.ok(names === 'current,tmp' || names === 'current', `atomic rename, seed ${seed}: ${names}`);
          outcomes.add(`${names}:${current}`);
        }
      }
    }
    assert.deepEqual([...outcomes].sort(), ['current,tmp:v1', 'current:v2']);
  });

  it('a rename across directories is one op on each: the file may end up under both names or neither', async () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < SEEDS; seed++) {
      const { disk, fs } = await diskWithData(seed);
      await fs.mkdir('/other');
      await fs.writeFile('/data/f', Buffer.from('f'));
      await fs.syncDirectory('/data');
      await fs.syncDirectory('/');
      await fs.rename('/data/f', '/other/f');
      disk.powerCut();
      const after = disk.mount();
      outcomes.add(`${await exists(after, '/data/f')}/${await exists(after, '/other/f')}`);
    }
    assert.deepEqual([...outcomes].sort(), ['false/false', 'false/true', 'true/false', 'true/true']);
  });

  it('tears an unsynced write: some cut keeps a strict, non-empty prefix of it', async () => {
    const payload = Buffer.from('0123456789abcdef');
    let torn = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w');
      await file.sync();
      await fs.syncDirectory('/data');
      await file.write(payload, 0, payload.length, 0);
      disk.powerCut();
      const content = await disk.mount().readFile('/data/f');
      assert.ok(payload.subarray(0, content.length).equals(content), `a prefix, seed ${seed}: ${content.toString()}`);
      if (content.length > 0 && content.length < payload.length) torn++;
    }
    assert.ok(torn > 0);
  });

  it('reorders unsynced writes: for some seed a later write survives while an earlier one does not', async () => {
    let reordered = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w');
      await file.truncate(8);
      await file.sync();
      await fs.syncDirectory('/data');
      await file.write(Buffer.from('AAAA'), 0, 4, 0);
      await file.write(Buffer.from('BBBB'), 0, 4, 4);
      disk.powerCut();
      const content = (await disk.mount().readFile('/data/f')).toString('latin1');
      if (content.startsWith('\0') && content.endsWith('BBBB')) reordered++;
    }
    assert.ok(reordered > 0);
  });

  it('after a failed datasync the pending writes stay visible, a later datasync succeeds, and a cut loses them (a hole of zeros)', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w+');
      await file.sync();
      await fs.syncDirectory('/data');
      await file.write(Buffer.from('lost'), 0, 4, 0);
      disk.injectFault({ operation: 'datasync', code: 'EIO' });
      await rejectsWith(file.datasync(), 'EIO');
      assert.deepEqual(await file.readFile(), Buffer.from('lost'), 'still in the page cache');
      await file.write(Buffer.from('kept'), 0, 4, 4);
      await file.datasync();
      await file.datasync();
      assert.deepEqual(await fs.readFile('/data/f'), Buffer.from('lostkept'));
      assert.match(disk.describe(), /\/data\/f file #\d+ size 8 \(\w+\) durable 8/);
      disk.powerCut();
      assert.deepEqual(await disk.mount().readFile('/data/f'), Buffer.from('\0\0\0\0kept'), `seed ${seed}`);
    }
  });

  it('doomed writes are dropped by every cut even without a later sync', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w');
      await file.sync();
      await fs.syncDirectory('/data');
      await file.write(Buffer.from('doomed'), 0, 6, 0);
      disk.injectFault({ operation: ['sync', 'datasync'], pathIncludes: '/data/f', code: 'ENOSPC' });
      await rejectsWith(file.sync(), 'ENOSPC');
      disk.powerCut();
      assert.equal((await disk.mount().stat('/data/f')).size, 0, `seed ${seed}`);
    }
  });

  it('a truncate pending at a failed sync is not doomed (inode metadata): the next sync makes it durable', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const { disk, fs } = await diskWithData(seed);
      await fs.writeFile('/data/f', Buffer.from('OLDCONTENT'));
      const first = await fs.open('/data/f', 'r+');
      await first.sync();
      await first.close();
      await fs.syncDirectory('/data');
      const file = await fs.open('/data/f', 'w');
      await file.write(Buffer.from('new'), 0, 3, 0);
      disk.injectFault({ operation: 'datasync', code: 'EIO' });
      await rejectsWith(file.datasync(), 'EIO');
      await file.datasync();
      disk.powerCut();
      assert.deepEqual(await disk.mount().readFile('/data/f'), Buffer.alloc(0), `seed ${seed}`);
    }
  });

  it('sync() of a directory opened for reading makes its entries durable (how nodeFileSystem syncs one)', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const { disk, fs } = await diskWithData(seed);
      await fs.writeFile('/data/f', Buffer.from(''));
      const directory = await fs.open('/data', 'r');
      await rejectsWith(directory.readFile(), 'EISDIR');
      await directory.sync();
      await directory.close();
      disk.powerCut();
      assert.ok(await exists(disk.mount(), '/data/f'), `seed ${seed}`);
    }
  });

  it('a failed syncDirectory leaves the entries pending: a later one makes them durable', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const { disk, fs } = await diskWithData(seed);
      await fs.writeFile('/data/f', Buffer.from(''));
      disk.injectFault({ operation: 'syncDirectory', code: 'EIO' });
      await rejectsWith(fs.syncDirectory('/data'), 'EIO');
      await fs.syncDirectory('/data');
      disk.powerCut();
      assert.ok(await exists(disk.mount(), '/data/f'), `seed ${seed}`);
    }
  });

  it('old mounts and old handles reject with EIO after the cut, and cannot change the new boot', async () => {
    const { disk, fs } = await diskWithData(7);
    const file = await fs.open('/data/f', 'w');
    await file.sync();
    await fs.syncDirectory('/data');
    disk.powerCut();
    await rejectsWith(fs.readdir('/'), 'EIO');
    const fresh = disk.mount();
    await rejectsWith(fs.writeFile('/data/g', Buffer.from('g')), 'EIO');
    await rejectsWith(file.write(Buffer.from('x'), 0, 1, 0), 'EIO');
    await rejectsWith(file.read(Buffer.alloc(1), 0, 1, 0), 'EIO');
    await rejectsWith(file.close(), 'EIO');
    assert.deepEqual(await fresh.readdir('/data'), ['f']);
    assert.equal((await fresh.stat('/data/f')).size, 0);
  });

  it('powerCutAfterOperations(n) cuts when the n-th operation from now starts; it and later ones reject', async () => {
    const { disk, fs } = await diskWithData(11);
    const file = await fs.open('/data/f', 'w');
    await fs.syncDirectory('/data');
    const before = disk.operationCount;
    disk.powerCutAfterOperations(3);
    await file.write(Buffer.from('a'), 0, 1, 0);
    await file.datasync();
    assert.equal(disk.powerIsOn, true);
    await rejectsWith(file.write(Buffer.from('b'), 0, 1, 1), 'EIO');
    assert.equal(disk.powerIsOn, false);
    assert.equal(disk.operationCount, before + 3);
    await rejectsWith(fs.stat('/data/f'), 'EIO');
    const after = disk.mount();
    assert.deepEqual(await after.readFile('/data/f'), Buffer.from('a'));
    assert.throws(() => disk.powerCutAfterOperations(0), RangeError);
  });

  it('counts reads and closes as operations', async () => {
    const disk = new SimulatedDisk({ seed: 12 });
    const fs = disk.mount();
    await fs.writeFile('/f', Buffer.from('f'));
    const file = await fs.open('/f', 'r');
    await file.read(Buffer.alloc(1), 0, 1, 0);
    await file.close();
    assert.equal(disk.operationCount, 4);
  });
});

describe('SimulatedDisk: faults and capacity', () => {
  it('an injected fault can let its first matching calls through (after) and strike a given number of times', async () => {
    const { disk, fs } = await diskWithData(1);
    disk.injectFault({ operation: 'syncDirectory', pathIncludes: '/data', code: 'EIO', after: 2, times: 2 });
    await fs.syncDirectory('/data');
    await fs.syncDirectory('/data');
    await rejectsWith(fs.syncDirectory('/data'), 'EIO');
    await rejectsWith(fs.syncDirectory('/data'), 'EIO');
    await fs.syncDirectory('/data');
  });

  it('an injected ENOSPC on a write writes a strict prefix, then rejects', async () => {
    const prefixes = new Set<number>();
    for (let seed = 0; seed < 50; seed++) {
      const { disk, fs } = await diskWithData(seed);
      const file = await fs.open('/data/f', 'w+');
      disk.injectFault({ operation: 'writev', code: 'ENOSPC' });
      await rejectsWith(file.writev([Buffer.from('abcd'), Buffer.from('efgh')], 0), 'ENOSPC');
      const content = await file.readFile();
      assert.ok(content.length < 8 && Buffer.from('abcdefgh').subarray(0, content.length).equals(content));
      prefixes.add(content.length);
    }
    assert.ok(prefixes.has(0) && prefixes.size > 2, [...prefixes].join(','));
  });

  it('an injected EIO changes nothing; rules match by operation and path and are consumed', async () => {
    const disk = new SimulatedDisk({ seed: 5 });
    const fs = disk.mount();
    disk.injectFault({ operation: 'writeFile', pathIncludes: 'target', code: 'EIO', times: 2 });
    await fs.writeFile('/other', Buffer.from('o'));
    await rejectsWith(fs.writeFile('/target', Buffer.from('t')), 'EIO');
    await rejectsWith(fs.writeFile('/target', Buffer.from('t')), 'EIO');
    assert.deepEqual(await fs.readdir('/'), ['other']);
    await fs.writeFile('/target', Buffer.from('t'));
    disk.injectFault({ code: 'EIO' });
    await rejectsWith(fs.rename('/target', '/renamed'), 'EIO');
    assert.deepEqual(await fs.readdir('/'), ['other', 'target']);
  });

  it('a full disk writes what fits, then ENOSPC; writev may return a short count; freeing space helps', async () => {
    const shortCounts = new Set<number>();
    for (let seed = 0; seed < 30; seed++) {
      const disk = new SimulatedDisk({ seed, capacityBytes: 10 });
      const fs = disk.mount();
      await fs.writeFile('/a', Buffer.from('123456'));
      await rejectsWith(fs.writeFile('/b', Buffer.from('abcdef')), 'ENOSPC');
      assert.deepEqual(await fs.readFile('/b'), Buffer.from('abcd'));
      await fs.unlink('/b');
      const file = await fs.open('/c', 'w');
      try {
        const { bytesWritten } = await file.writev([Buffer.from('xyz'), Buffer.from('w')], 0);
        shortCounts.add(bytesWritten);
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
        shortCounts.add(-1);
      }
      assert.equal((await file.stat()).size, 4);
      await rejectsWith(file.writev([Buffer.from('!')], 4), 'ENOSPC');
      await rejectsWith(file.truncate(20), 'ENOSPC');
    }
    assert.equal(shortCounts.size, 1, 'four bytes fit exactly: a full count');
    for (let seed = 0; seed < 30; seed++) {
      const disk = new SimulatedDisk({ seed, capacityBytes: 3 });
      const file = await disk.mount().open('/c', 'w');
      try {
        shortCounts.add((await file.writev([Buffer.from('xyzw')], 0)).bytesWritten);
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
        shortCounts.add(-2);
      }
      assert.equal((await file.stat()).size, 3);
    }
    assert.ok(shortCounts.has(3) && shortCounts.has(-2), [...shortCounts].join(','));
  });

  it('random faults hit the listed operations with about the given probability, and only those', async () => {
    const disk = new SimulatedDisk({ seed: 99 });
    const fs = disk.mount();
    await fs.writeFile('/f', Buffer.from('f'));
    const file = await fs.open('/f', 'r+');
    disk.setRandomFaults({ probability: 0.3, codes: ['EIO'], operations: ['datasync'] });
    let failures = 0;
    for (let i = 0; i < 200; i++) {
      await file.read(Buffer.alloc(1), 0, 1, 0);
      try {
        await file.datasync();
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'EIO');
        failures++;
      }
    }
    assert.ok(failures > 30 && failures < 90, `${failures}`);
    disk.setRandomFaults(null);
    await file.datasync();
  });
});

describe('SimulatedDisk: determinism', () => {
  async function scenario(seed: number): Promise<string> {
    const { disk, fs } = await diskWithData(seed);
    disk.setRandomFaults({ probability: 0.2, codes: ['EIO', 'ENOSPC'] });
    const states: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 6; i++) {
        const attempt = async (): Promise<void> => {
          const file = await fs.open(`/data/f${i % 3}`, 'r+').catch(() => fs.open(`/data/f${i % 3}`, 'w'));
          await file.writev([Buffer.alloc(5 + i, 65 + i)], i * 3);
          if (i % 2 === 0) await file.datasync();
          if (i === 4) await fs.rename(`/data/f${i % 3}`, `/data/r${round}`);
          await fs.syncDirectory('/data');
          await file.close();
        };
        await attempt().catch(() => undefined);
      }
      disk.powerCut();
      states.push(disk.describe());
      disk.mount();
    }
    return states.join('\n--\n');
  }

  it('the same seed and the same calls give the same states; another seed gives others', async () => {
    const first = await scenario(42);
    assert.equal(await scenario(42), first);
    let differs = false;
    for (let seed = 43; seed < 53 && !differs; seed++) differs = (await scenario(seed)) !== first;
    assert.ok(differs);
  });
});
