/**
 * A feed's queue: entries in order, their bytes counted against the
 * node's shared budget, and shedding that keeps the newest entry of each
 * build (the feed reads the rest back from history) and every entry that
 * has no seq.
 */
import { describe, expect, it } from "vitest";
import { FeedQueue } from "../relay/feed-queue.ts";
import type { BatchEntry } from "../relay/line-batcher.ts";
import { MemoryBudget } from "../relay/recent-lines.ts";
import type { BuildId } from "../shared/wire.ts";

function line(buildId: string, seq: number): BatchEntry {
  return { payload: `${buildId}:${seq}`, buildId: buildId as BuildId, seq };
}

describe("feed queue", () => {
  it("hands entries out in order and returns their bytes to the shared budget", () => {
    const budget = new MemoryBudget(1000);
    const a = new FeedQueue(budget);
    const b = new FeedQueue(budget);
    a.push([line("b1", 1), line("b1", 2)]);
    b.push([{ payload: "not ours" }]);
    // "b1:1" and "b1:2" are 4 characters each, "not ours" 8.
    expect(budget.used).toBe(16);

    expect(a.shift()).toEqual(line("b1", 1));
    expect(a.peek()).toEqual(line("b1", 2));
    expect(a.length).toBe(1);
    expect(budget.used).toBe(12);

    a.shift();
    expect(a.length).toBe(0);
    expect(a.peek()).toBeUndefined();
    b.clear();
    expect(budget.used).toBe(0);
  });

  it("is over budget when all queues together pass the limit", () => {
    const budget = new MemoryBudget(7);
    const a = new FeedQueue(budget);
    const b = new FeedQueue(budget);
    a.push([line("b1", 1)]);
    expect(b.overBudget).toBe(false);
    b.push([line("b1", 2)]);
    expect(a.overBudget).toBe(true);
  });

  it("sheds all but the newest entry of each build, and keeps entries without a seq", () => {
    const budget = new MemoryBudget(1 << 20);
    const queue = new FeedQueue(budget);
    queue.push([
      line("b1", 4),
      line("b1", 5),
      { payload: "not ours" },
      line("b2", 1),
      line("b1", 6),
      line("b1", 6),
      line("b2", 2),
    ]);
    queue.shift();

    // b1:5, the second b1:6 and b2:1 go, 4 characters each.
    expect(queue.shed()).toEqual({ lines: 3, bytes: 12 });
    const left: BatchEntry[] = [];
    while (queue.length > 0) left.push(queue.shift());
    expect(left).toEqual([
      { payload: "not ours" },
      line("b1", 6),
      line("b2", 2),
    ]);
    expect(budget.used).toBe(0);
  });

  it("keeps its order across many entries delivered from the front", () => {
    const queue = new FeedQueue(new MemoryBudget(1 << 30));
    const entries = Array.from({ length: 10_000 }, (_, i) => line("b", i + 1));
    queue.push(entries.slice(0, 6000));
    const seen: number[] = [];
    for (let i = 0; i < 5000; i++) seen.push(queue.shift().seq!);
    queue.push(entries.slice(6000));
    while (queue.length > 0) seen.push(queue.shift().seq!);
    expect(seen).toEqual(entries.map((e) => e.seq));
  });
});
