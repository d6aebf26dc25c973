/**
 * Checks what one viewer was handed against the protocol's promise: every
 * seq of a build exactly once, in order, ending with the status (see
 * shared/wire.ts). Used by the k6 scenarios and the benchmark's light
 * viewers alike, so it imports nothing that needs a runtime.
 *
 * A seq above the next one expected counts the skipped seqs as lost. A seq
 * at or below the last one seen counts as a duplicate: the relay delivers
 * in order, so a late line is as much a fault as a repeated one, and
 * telling them apart would cost a set of every seq per viewer. A gap
 * notice from the relay counts its range as lost too: the lines were
 * announced as gone, not delivered. Lines after the last one handed over,
 * up to the build's end, are `undelivered`: not skipped, but not there
 * when the viewer stopped waiting, which under overload means late rather
 * than lost.
 */

export interface DeliveryCounts {
  /** Lines and statuses handed over new and in order. */
  delivered: number;
  lost: number;
  /** Lines after the last one handed over that never came in time. */
  undelivered: number;
  duplicates: number;
  /** Gap notices received (their lines are in `lost`). */
  gapNotices: number;
  /** Builds whose status arrived. */
  finishedBuilds: number;
}

export type SeqVerdict = "next" | "skipped" | "duplicate";

interface BuildProgress {
  lastSeq: number;
  finished: boolean;
}

/** Where a viewer that reconnects resumes: `since` for `buildId`. */
export interface ResumePoint {
  buildId: string;
  lastSeq: number;
}

export class DeliveryTracker {
  private readonly builds = new Map<string, BuildProgress>();
  private latest: string | undefined;
  /** The progress of `latest`: nearly every line is of the build before it. */
  private latestBuild: BuildProgress | undefined;
  private readonly counts: DeliveryCounts = {
    delivered: 0,
    lost: 0,
    undelivered: 0,
    duplicates: 0,
    gapNotices: 0,
    finishedBuilds: 0,
  };

  /** Records a line (or, with `isStatus`, a build's final status). */
  seq(buildId: string, seq: number, isStatus = false): SeqVerdict {
    const build = this.progress(buildId);
    if (seq <= build.lastSeq) {
      this.counts.duplicates += 1;
      return "duplicate";
    }

    const verdict: SeqVerdict = seq === build.lastSeq + 1 ? "next" : "skipped";
    this.counts.lost += seq - build.lastSeq - 1;
    this.counts.delivered += 1;
    build.lastSeq = seq;
    if (isStatus && !build.finished) {
      build.finished = true;
      this.counts.finishedBuilds += 1;
    }
    return verdict;
  }

  /** Records a gap notice whose range ends at `toSeq`. */
  gap(buildId: string, toSeq: number): void {
    const build = this.progress(buildId);
    this.counts.gapNotices += 1;
    if (toSeq <= build.lastSeq) return;

    // Seqs skipped before `fromSeq` were never announced; lost either way.
    this.counts.lost += toSeq - build.lastSeq;
    build.lastSeq = toSeq;
  }

  /** The last seq handed over for a build, 0 when none was. */
  lastSeq(buildId: string): number {
    return this.builds.get(buildId)?.lastSeq ?? 0;
  }

  /** True once every build in `lastSeqs` reached its last seq. */
  reached(lastSeqs: Readonly<Record<string, number>>): boolean {
    for (const [buildId, last] of Object.entries(lastSeqs)) {
      if (this.lastSeq(buildId) < last) return false;
    }
    return true;
  }

  /**
   * The counts, with every seq of `lastSeqs` (build id to its final seq)
   * not reached counted as undelivered, or as lost when the viewer knows
   * they can never come (a string-form viewer that reconnected: that form
   * has no resume). Call it once, at the end.
   */
  settle(
    lastSeqs: Readonly<Record<string, number>> = {},
    shortfallIsLost = false,
  ): DeliveryCounts {
    for (const [buildId, last] of Object.entries(lastSeqs)) {
      const build = this.progress(buildId);
      if (last > build.lastSeq) {
        if (shortfallIsLost) this.counts.lost += last - build.lastSeq;
        else this.counts.undelivered += last - build.lastSeq;
        build.lastSeq = last;
      }
    }
    return this.snapshot();
  }

  snapshot(): DeliveryCounts {
    return { ...this.counts };
  }

  /** The build seen last and how far it got; undefined before any line. */
  resumePoint(): ResumePoint | undefined {
    if (this.latest === undefined) return undefined;
    return { buildId: this.latest, lastSeq: this.lastSeq(this.latest) };
  }

  private progress(buildId: string): BuildProgress {
    if (buildId === this.latest && this.latestBuild !== undefined) {
      return this.latestBuild;
    }
    let build = this.builds.get(buildId);
    if (!build) {
      build = { lastSeq: 0, finished: false };
      this.builds.set(buildId, build);
    }
    this.latest = buildId;
    this.latestBuild = build;
    return build;
  }
}
