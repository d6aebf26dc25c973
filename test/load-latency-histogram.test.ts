/**
 * The benchmark's latency histogram: quantiles at the upper edge of their
 * bucket, slow ones included. Overloaded fan-out runs see latencies past
 * a minute, and a quantile there must not read as the maximum.
 */
import { describe, expect, it } from "vitest";
import { LatencyHistogram } from "../load-tests/bench/latency-histogram.ts";

describe("latency histogram", () => {
  it("reads quantiles from 1 ms buckets below 1 s and 10 ms buckets up to minutes", () => {
    const histogram = new LatencyHistogram();
    histogram.record(5, 97);
    histogram.record(70_004);
    histogram.record(80_004);
    histogram.record(90_004);

    expect(histogram.count).toBe(100);
    expect(histogram.quantileMs(0.5)).toBe(6);
    expect(histogram.quantileMs(0.98)).toBe(70_010);
    expect(histogram.quantileMs(0.99)).toBe(80_010);
    expect(histogram.maxMs).toBe(90_004);
  });

  it("merges what other processes counted", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.record(1500, 3);
    b.record(-2);
    b.record(120_000);

    const merged = new LatencyHistogram();
    merged.merge(a.toData());
    merged.merge(b.toData());
    expect(merged.count).toBe(5);
    expect(merged.quantileMs(0.2)).toBe(1);
    expect(merged.quantileMs(0.8)).toBe(1510);
    expect(merged.quantileMs(1)).toBe(120_000);
  });
});
