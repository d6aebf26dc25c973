/**
 * Keeps one build's history stream within its byte cap.
 *
 * Valkey can cap a stream by entry count (`XADD ... MAXLEN`) but not by
 * size, so the builder remembers the seq and payload size of every entry it
 * wrote, oldest first, and when their sum goes over `maxBytes` it names the
 * oldest seq to keep; the publish script then runs `XTRIM ... MINID` with
 * it. Entries that `MAXLEN` removes are forgotten here too.
 *
 * Only this builder writes its build's stream, so the sum matches the
 * stream. It counts payload bytes; Valkey's memory per entry is somewhat
 * higher. The newest entry is always kept, even when it alone is over.
 */
import type { Seq } from "../shared/wire.ts";

export interface HistoryBudgetLimits {
  /** Entries the stream keeps (its MAXLEN). */
  maxEntries: number;
  /** Payload bytes the stream keeps. */
  maxBytes: number;
}

export class HistoryBudget {
  private seqs: Seq[] = [];
  private sizes: number[] = [];
  private head = 0;
  private totalBytes = 0;

  constructor(private readonly limits: HistoryBudgetLimits) {}

  /** Payload bytes of the entries the stream holds now. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Entries the stream holds now. */
  get entries(): number {
    return this.seqs.length - this.head;
  }

  /**
   * Records entries about to be written, in seq order. Returns the seq of
   * the oldest entry to keep when older ones must go to respect the byte
   * cap, else undefined.
   */
  add(entries: ReadonlyArray<{ seq: Seq; bytes: number }>): Seq | undefined {
    for (const entry of entries) {
      this.seqs.push(entry.seq);
      this.sizes.push(entry.bytes);
      this.totalBytes += entry.bytes;
    }

    // MAXLEN removes these whatever their size.
    while (this.entries > this.limits.maxEntries) this.forgetOldest();

    let trimmed = false;
    while (this.totalBytes > this.limits.maxBytes && this.entries > 1) {
      this.forgetOldest();
      trimmed = true;
    }

    this.compact();
    return trimmed ? this.seqs[this.head] : undefined;
  }

  private forgetOldest(): void {
    this.totalBytes -= this.sizes[this.head]!;
    this.head += 1;
  }

  private compact(): void {
    if (this.head < 4096 || this.head < this.seqs.length / 2) return;

    this.seqs = this.seqs.slice(this.head);
    this.sizes = this.sizes.slice(this.head);
    this.head = 0;
  }
}
