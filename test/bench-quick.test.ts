/**
 * The quick benchmark as CI runs it: every contender must deliver every
 * line once, and our relays' /metrics must agree with the benchmark's own
 * counts. Speeds are printed by `npm run bench`, never asserted.
 */
import { describe, expect, it } from "vitest";
import { runBench } from "../load-tests/bench/bench-runner.ts";
import { runProblems } from "../load-tests/bench/run-result.ts";

describe("quick benchmark", () => {
  it("loses and duplicates no line and agrees with the relays' counts", async () => {
    const report = await runBench({
      quick: true,
      nodes: 2,
      only: [],
      log: () => {},
    });

    expect(report.results.length).toBeGreaterThan(0);
    for (const result of report.results) {
      const run = `${result.scenario} / ${result.contender}`;
      expect(runProblems(result), run).toEqual([]);
      if (result.kind === "load") {
        expect({ run, lost: result.lost, dup: result.duplicates }).toEqual({
          run,
          lost: 0,
          dup: 0,
        });
        expect(result.linesDelivered, run).toBe(
          result.linesPublished * (result.viewers / result.builds),
        );
      }
      if (result.system === "ours") {
        expect(result.crossChecks.length, run).toBeGreaterThan(0);
        expect(
          result.crossChecks.every((c) => c.match),
          run,
        ).toBe(true);
      }
    }
  }, 180_000);
});
