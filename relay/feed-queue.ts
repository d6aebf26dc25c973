/**
 * The entries a channel feed has received and not yet delivered, in
 * order, with their payload bytes counted against a budget that all feeds
 * of a node share (`FEED_QUEUE_BYTES`).
 *
 * Past the budget the queue sheds: it keeps only the newest entry of each
 * build, and the feed, reaching it, reads the lines before it from history
 * as after any gap (channel-feed.ts). Entries without a seq cannot be read
 * back and stay.
 */
import type { BuildId, Seq } from "../shared/wire.ts";
import type { BatchEntry } from "./line-batcher.ts";
import type { MemoryBudget } from "./recent-lines.ts";

/** Delivered entries kept at the front before the array is compacted. */
const COMPACT_AFTER = 4096;

export interface ShedEntries {
  lines: number;
  bytes: number;
}

export class FeedQueue {
  /** Waiting entries, from `head` on. */
  private entries: BatchEntry[] = [];
  private head = 0;
  /** Payload bytes from `head` on. */
  private bytes = 0;

  constructor(private readonly budget: MemoryBudget) {}

  get length(): number {
    return this.entries.length - this.head;
  }

  /** The next entry, or undefined when none waits. */
  peek(): BatchEntry | undefined {
    return this.entries[this.head];
  }

  push(entries: readonly BatchEntry[]): void {
    let bytes = 0;
    for (const entry of entries) {
      this.entries.push(entry);
      bytes += entry.payload.length;
    }
    this.count(bytes);
  }

  /** Takes the next entry; the queue must not be empty. */
  shift(): BatchEntry {
    const entry = this.entries[this.head]!;
    this.count(-entry.payload.length);
    this.head += 1;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (
      this.head >= COMPACT_AFTER &&
      this.head * 2 >= this.entries.length
    ) {
      // Drop the delivered front now and then, not on every entry.
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /** Whether the node's waiting lines passed their budget. */
  get overBudget(): boolean {
    return this.budget.used > this.budget.limitBytes;
  }

  /** Keeps only the newest waiting entry of each build; says what went. */
  shed(): ShedEntries {
    const newest = new Map<BuildId, Seq>();
    for (let i = this.head; i < this.entries.length; i++) {
      const { buildId, seq } = this.entries[i]!;
      if (buildId === undefined || seq === undefined) continue;
      if (seq > (newest.get(buildId) ?? 0)) newest.set(buildId, seq);
    }

    const kept: BatchEntry[] = [];
    let keptBytes = 0;
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      const { buildId, seq } = entry;
      if (buildId !== undefined && seq !== undefined) {
        if (newest.get(buildId) !== seq) continue;
        newest.delete(buildId);
      }
      kept.push(entry);
      keptBytes += entry.payload.length;
    }

    const shed = {
      lines: this.length - kept.length,
      bytes: this.bytes - keptBytes,
    };
    this.count(-shed.bytes);
    this.entries = kept;
    this.head = 0;
    return shed;
  }

  /** Empties the queue, returning its bytes to the budget. */
  clear(): void {
    this.count(-this.bytes);
    this.entries = [];
    this.head = 0;
  }

  private count(bytes: number): void {
    this.bytes += bytes;
    this.budget.used += bytes;
  }
}
