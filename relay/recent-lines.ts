/**
 * What one node's feed of a channel delivered lately, kept while some
 * viewer of it is catching up.
 *
 * Every delivery of the feed has a position, counted from the feed's
 * start; a held-back viewer's cursor is the position of the next item it
 * is owed. Items span builds, gap notices and foreign payloads, so a cursor
 * needs no build id. All feeds of a node draw on one byte budget: a feed
 * that goes over it drops its own oldest items, and viewers whose cursor
 * lies before what is kept can no longer be served from memory.
 */
import type { ViewerMessage } from "../shared/viewer-protocol.ts";

export interface RecentItem {
  /** What a string-form viewer receives as `message`. */
  payload: string;
  /** What a structured viewer receives in `logs`; unset for foreign payloads. */
  message: ViewerMessage | undefined;
}

/** Bytes held across all feeds of a node, against one limit. */
export class MemoryBudget {
  used = 0;

  constructor(readonly limitBytes: number) {}
}

/** Rough cost of an item: its payload, its parsed form, the slot. */
function costOf(item: RecentItem): number {
  return 2 * item.payload.length + 96;
}

export class RecentLines {
  private items: RecentItem[] = [];
  private head = 0;
  private startPosition = 0;
  private bytes = 0;

  constructor(private readonly budget: MemoryBudget) {}

  /** Position of the oldest item kept. */
  get start(): number {
    return this.startPosition;
  }

  /** Position the next item appended will have. */
  get end(): number {
    return this.startPosition + this.items.length - this.head;
  }

  /** Starts empty at `position`, dropping anything kept. */
  reset(position: number): void {
    this.release();
    this.startPosition = position;
  }

  append(item: RecentItem): void {
    const cost = costOf(item);
    this.items.push(item);
    this.bytes += cost;
    this.budget.used += cost;
    while (this.budget.used > this.budget.limitBytes && this.end > this.start) {
      this.dropFirst();
    }
  }

  /**
   * Items from `position` on (which must be kept): at most `maxItems`, and
   * no more once `maxBytes` of payload is reached (always at least one).
   */
  slice(position: number, maxItems: number, maxBytes: number): RecentItem[] {
    const from = this.head + (position - this.startPosition);
    const to = Math.min(this.items.length, from + maxItems);
    let bytes = 0;
    let i = from;
    while (i < to && (i === from || bytes < maxBytes)) {
      bytes += this.items[i]!.payload.length;
      i += 1;
    }
    return this.items.slice(from, i);
  }

  /** Forgets everything before `position`. */
  trimTo(position: number): void {
    while (this.start < position && this.end > this.start) this.dropFirst();
  }

  /** Gives every byte back to the budget. */
  release(): void {
    this.budget.used -= this.bytes;
    this.bytes = 0;
    this.startPosition = this.end;
    this.items = [];
    this.head = 0;
  }

  private dropFirst(): void {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as unknown as RecentItem;
    this.head += 1;
    this.startPosition += 1;
    const cost = costOf(item);
    this.bytes -= cost;
    this.budget.used -= cost;

    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
