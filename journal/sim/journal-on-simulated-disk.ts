// A journal in /data on a fresh simulated disk, for the tests that script faults and power cuts.
// The lock probe answers "unknown" because a simulated disk has no boot id or other processes.
import { Journal, type JournalOptions } from '../journal.js';
import { SimulatedDisk } from './simulated-disk.js';

export const NO_LOCK_PROBE = { bootId: () => Promise.resolve(undefined), process: () => Promise.resolve(undefined) };

export interface SimulatedJournalSetup {
  disk: SimulatedDisk;
  /** Opens (or, after a power cut, reopens) the journal on the disk as it now is. */
  open(): Promise<Journal>;
}

/** `clock` is read on every call, so a test may move its time forward between steps. */
export async function journalOnSimulatedDisk(seed: number, clock: () => number = () => 1_000_000, options: Partial<JournalOptions> = {}): Promise<SimulatedJournalSetup> {
  const disk = new SimulatedDisk({ seed });
  const fs = disk.mount();
  await fs.mkdir('/data', { recursive: true });
  await fs.syncDirectory('/');
  const open = () => Journal.open('/data', { fileSystem: disk.mount(), clock, retentionCheckMs: 0, lockProbe: NO_LOCK_PROBE, ...options });
  return { disk, open };
}
