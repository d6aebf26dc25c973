/**
 * The catch-up buffer: positions across appends and trims, pages bounded
 * by bytes, and one byte budget shared by every feed of a node.
 */
import { describe, expect, it } from "vitest";
import { MemoryBudget, RecentLines } from "../relay/recent-lines.ts";

const item = (payload: string) => ({ payload, message: undefined });
const payloads = (items: Array<{ payload: string }>) =>
  items.map((i) => i.payload);

describe("RecentLines", () => {
  it("keeps positions across appends, trims and a reset", () => {
    const recent = new RecentLines(new MemoryBudget(1 << 20));
    recent.reset(40);
    for (let i = 40; i < 50; i++) recent.append(item(`p${i}`));
    expect([recent.start, recent.end]).toEqual([40, 50]);
    expect(payloads(recent.slice(45, 3, 1 << 20))).toEqual([
      "p45",
      "p46",
      "p47",
    ]);

    recent.trimTo(48);
    expect([recent.start, recent.end]).toEqual([48, 50]);
    expect(payloads(recent.slice(48, 10, 1 << 20))).toEqual(["p48", "p49"]);
    expect(recent.slice(50, 10, 1 << 20)).toEqual([]);

    recent.reset(70);
    expect([recent.start, recent.end]).toEqual([70, 70]);
  });

  it("ends a page once its bytes reach the limit, with at least one item", () => {
    const recent = new RecentLines(new MemoryBudget(1 << 20));
    recent.reset(0);
    for (let i = 0; i < 10; i++) recent.append(item("x".repeat(100)));
    expect(recent.slice(0, 10, 250)).toHaveLength(3);
    expect(recent.slice(0, 10, 50)).toHaveLength(1);
    expect(recent.slice(0, 2, 1 << 20)).toHaveLength(2);
  });

  it("shares one budget: the feed that goes over it drops its own oldest", () => {
    const budget = new MemoryBudget(3000);
    const a = new RecentLines(budget);
    const b = new RecentLines(budget);
    a.reset(0);
    b.reset(0);
    // Each item costs 2 x 400 + 96 = 896 bytes.
    for (let i = 0; i < 2; i++) a.append(item("a".repeat(400)));
    for (let i = 0; i < 3; i++) b.append(item("b".repeat(400)));

    expect(budget.used).toBeLessThanOrEqual(3000);
    expect([a.start, a.end]).toEqual([0, 2]);
    expect([b.start, b.end]).toEqual([2, 3]);

    a.release();
    expect(budget.used).toBe(896);
    b.release();
    expect(budget.used).toBe(0);
  });

  it("keeps slicing right after compacting a long-trimmed front", () => {
    const recent = new RecentLines(new MemoryBudget(1 << 30));
    recent.reset(0);
    for (let i = 0; i < 5000; i++) recent.append(item(String(i)));
    recent.trimTo(3000);
    expect(payloads(recent.slice(3000, 2, 1 << 20))).toEqual(["3000", "3001"]);
    expect(payloads(recent.slice(4998, 5, 1 << 20))).toEqual(["4998", "4999"]);
  });
});
