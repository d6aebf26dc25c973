/**
 * The load clients' check of what a viewer was handed: every seq once, in
 * order; skips are lost, repeats are duplicates, a missing tail is late
 * unless it can never come.
 */
import { describe, expect, it } from "vitest";
import { DeliveryTracker } from "../load-tests/delivery-tracker.ts";

describe("delivery tracker", () => {
  it("counts skipped seqs as lost and repeated ones as duplicates", () => {
    const tracker = new DeliveryTracker();
    expect(tracker.seq("b", 1)).toBe("next");
    expect(tracker.seq("b", 4)).toBe("skipped");
    expect(tracker.seq("b", 3)).toBe("duplicate");
    expect(tracker.seq("b", 5, true)).toBe("next");

    expect(tracker.settle({ b: 5 })).toEqual({
      delivered: 3,
      lost: 2,
      undelivered: 0,
      duplicates: 1,
      gapNotices: 0,
      finishedBuilds: 1,
    });
  });

  it("keeps each build's place when lines of two builds interleave", () => {
    const tracker = new DeliveryTracker();
    expect(tracker.seq("a", 1)).toBe("next");
    expect(tracker.seq("b", 1)).toBe("next");
    expect(tracker.seq("a", 2)).toBe("next");
    expect(tracker.seq("a", 2)).toBe("duplicate");
    expect(tracker.seq("b", 3)).toBe("skipped");
    expect(tracker.seq("a", 3)).toBe("next");

    expect(tracker.lastSeq("a")).toBe(3);
    expect(tracker.lastSeq("b")).toBe(3);
    expect(tracker.resumePoint()).toEqual({ buildId: "a", lastSeq: 3 });
    expect(tracker.settle({ a: 3, b: 4 })).toMatchObject({
      delivered: 5,
      lost: 1,
      undelivered: 1,
      duplicates: 1,
    });
  });

  it("counts a gap notice's range as lost", () => {
    const tracker = new DeliveryTracker();
    tracker.seq("b", 1);
    tracker.gap("b", 6);
    tracker.seq("b", 7);

    expect(tracker.snapshot()).toMatchObject({ lost: 5, gapNotices: 1 });
  });

  it("counts a missing tail as late, or as lost when it cannot come", () => {
    const late = new DeliveryTracker();
    late.seq("b", 1);
    expect(late.settle({ b: 10 })).toMatchObject({ lost: 0, undelivered: 9 });

    const lost = new DeliveryTracker();
    lost.seq("b", 1);
    expect(lost.settle({ b: 10 }, true)).toMatchObject({
      lost: 9,
      undelivered: 0,
    });
  });

  it("resumes from the last build seen", () => {
    const tracker = new DeliveryTracker();
    expect(tracker.resumePoint()).toBeUndefined();
    tracker.seq("old", 3);
    tracker.seq("new", 1);
    tracker.seq("new", 2);

    expect(tracker.resumePoint()).toEqual({ buildId: "new", lastSeq: 2 });
    expect(tracker.reached({ old: 3, new: 2 })).toBe(true);
    expect(tracker.reached({ new: 3 })).toBe(false);
  });
});
