/**
 * Latency histogram with ~1% wide logarithmic buckets from 1 µs to ~100 s: fixed memory however
 * long the run, and histograms from several load-generator processes merge by adding counts.
 */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = Math.ceil(Math.log(1e8) / LOG_GROWTH) + 2;

export class LatencyHistogram {
  readonly counts: number[];
  total = 0;
  maxMicros = 0;
  sumMicros = 0;

  constructor(counts?: readonly number[]) {
    this.counts = counts ? counts.slice() : new Array<number>(BUCKETS).fill(0);
    for (const c of this.counts) this.total += c;
  }

  record(micros: number): void {
    const m = micros < 1 ? 1 : micros;
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(m) / LOG_GROWTH));
    this.counts[i] = (this.counts[i] as number) + 1;
    this.total++;
    this.sumMicros += m;
    if (m > this.maxMicros) this.maxMicros = m;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.total += other.total;
    this.sumMicros += other.sumMicros;
    this.maxMicros = Math.max(this.maxMicros, other.maxMicros);
  }

  /** Upper bound of the bucket holding the q-quantile (0 < q <= 1), in µs; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(GROWTH ** (i + 1), this.maxMicros);
    }
    return this.maxMicros;
  }

  toJSON(): { counts: number[]; maxMicros: number; sumMicros: number } {
    return { counts: this.counts, maxMicros: this.maxMicros, sumMicros: this.sumMicros };
  }

  static fromJSON(j: { counts: number[]; maxMicros: number; sumMicros: number }): LatencyHistogram {
    const h = new LatencyHistogram(j.counts);
    h.maxMicros = j.maxMicros;
    h.sumMicros = j.sumMicros;
    return h;
  }
}
