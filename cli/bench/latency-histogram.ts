// A latency histogram with bounded memory and bounded relative error, for benchmarks that
// record one sample per operation (millions of them) and report percentiles.
//
// Layout: samples are whole nanoseconds. Values below SUB_BUCKETS fall into exact buckets;
// above, each power of two [2^k, 2^(k+1)) is split into SUB_BUCKETS equal buckets, so a
// bucket's width is at most 1/SUB_BUCKETS of its lower bound (< 0.8% error with 128).
// Percentiles report a bucket's midpoint. Values at or above 2^MAX_EXPONENT ns (about 18
// minutes) are clamped into the last bucket; a benchmark never waits that long.
// Pure: no clock, no I/O.

const SUB_BUCKET_BITS = 7;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
const MAX_EXPONENT = 40;
const BUCKET_COUNT = (MAX_EXPONENT - SUB_BUCKET_BITS + 1) * SUB_BUCKETS;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  private minNs = Number.POSITIVE_INFINITY;
  private maxNs = 0;

  get count(): number {
    return this.total;
  }

  record(latencyNs: number): void {
    const value = Math.max(0, Math.round(latencyNs));
    const bucket = bucketOf(value);
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1;
    this.total += 1;
    if (value < this.minNs) this.minNs = value;
    if (value > this.maxNs) this.maxNs = value;
  }

  /** The latency (ns) at quantile q in [0, 1], nearest rank; 0 when empty. */
  quantileNs(q: number): number {
    if (this.total === 0) return 0;
    if (q <= 0) return this.minNs;
    if (q >= 1) return this.maxNs;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let bucket = 0; bucket < BUCKET_COUNT; bucket += 1) {
      seen += this.counts[bucket] ?? 0;
      if (seen >= rank) return Math.min(Math.max(bucketMidpoint(bucket), this.minNs), this.maxNs);
    }
    return this.maxNs;
  }
}

function bucketOf(value: number): number {
  if (value < SUB_BUCKETS) return value;
  const exponent = Math.min(Math.floor(Math.log2(value)), MAX_EXPONENT);
  if (exponent >= MAX_EXPONENT) return BUCKET_COUNT - 1;
  const shift = exponent - SUB_BUCKET_BITS;
  // Inside [2^exponent, 2^(exponent+1)): the top SUB_BUCKET_BITS bits after the leading one.
  const sub = Math.floor(value / 2 ** shift) - SUB_BUCKETS;
  return (shift + 1) * SUB_BUCKETS + Math.min(Math.max(sub, 0), SUB_BUCKETS - 1);
}

function bucketMidpoint(bucket: number): number {
  if (bucket < SUB_BUCKETS) return bucket;
  const shift = Math.floor(bucket / SUB_BUCKETS) - 1;
  const sub = bucket % SUB_BUCKETS;
  const lower = (SUB_BUCKETS + sub) * 2 ** shift;
  return lower + (2 ** shift - 1) / 2;
}

/** What a bench report prints of a latency distribution, in milliseconds. */
export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function percentilesMs(histogram: LatencyHistogram): Percentiles {
  const ms = (q: number): number => histogram.quantileNs(q) / 1e6;
  return { p50: ms(0.5), p99: ms(0.99), p999: ms(0.999), max: ms(1) };
}
