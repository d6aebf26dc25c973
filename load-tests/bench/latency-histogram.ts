/**
 * Delivery latencies of many viewers in fixed buckets, so viewer processes
 * can count millions of samples cheaply and the benchmark can merge them.
 *
 * Buckets are 1 ms wide up to 1 s and 10 ms wide up to 10 min, past any
 * run's publishing and drain; anything slower lands in one overflow
 * bucket, whose quantiles read as the maximum. Line timestamps are whole
 * milliseconds, so finer buckets would add nothing.
 */

const FINE_LIMIT_MS = 1000;
const COARSE_STEP_MS = 10;
const COARSE_LIMIT_MS = 600_000;
const BUCKETS =
  FINE_LIMIT_MS + (COARSE_LIMIT_MS - FINE_LIMIT_MS) / COARSE_STEP_MS + 1;

/** Non-empty buckets as `[index, count]` pairs, for sending between processes. */
export type HistogramData = Array<[number, number]>;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private max = 0;

  get count(): number {
    return this.total;
  }

  get maxMs(): number {
    return this.max;
  }

  record(latencyMs: number, times = 1): void {
    const ms = latencyMs < 0 ? 0 : latencyMs;
    this.counts[bucketOf(ms)]! += times;
    this.total += times;
    if (ms > this.max) this.max = ms;
  }

  /** The latency at quantile `q` (0-1): the upper edge of its bucket. */
  quantileMs(q: number): number {
    if (this.total === 0) return 0;

    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperEdgeOf(i), this.max);
    }
    return this.max;
  }

  toData(): HistogramData {
    const data: HistogramData = [];
    this.counts.forEach((count, index) => {
      if (count > 0) data.push([index, count]);
    });
    data.push([-1, this.max]);
    return data;
  }

  merge(data: HistogramData): void {
    for (const [index, count] of data) {
      if (index === -1) {
        this.max = Math.max(this.max, count);
        continue;
      }
      this.counts[index]! += count;
      this.total += count;
    }
  }
}

function bucketOf(ms: number): number {
  if (ms < FINE_LIMIT_MS) return Math.floor(ms);
  if (ms < COARSE_LIMIT_MS) {
    return FINE_LIMIT_MS + Math.floor((ms - FINE_LIMIT_MS) / COARSE_STEP_MS);
  }
  return BUCKETS - 1;
}

function upperEdgeOf(index: number): number {
  if (index < FINE_LIMIT_MS) return index + 1;
  if (index < BUCKETS - 1) {
    return FINE_LIMIT_MS + (index - FINE_LIMIT_MS + 1) * COARSE_STEP_MS;
  }
  return Number.POSITIVE_INFINITY;
}
