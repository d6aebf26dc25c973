/**
 * The messages of one build waiting to be published, oldest first.
 *
 * The queue is bounded for the build's output: when it holds more than
 * `maxLines` droppable messages or `maxBytes` of their payload, the oldest
 * droppable messages are dropped and returned to the caller, which reports
 * them. Messages the builder writes about itself (drop notices, the final
 * status) are not droppable and do not count against the bounds; there are
 * only ever a few of them.
 */
import type { Seq } from "../shared/wire.ts";

export interface QueuedMessage {
  readonly seq: Seq;
  /** The JSON sent to Valkey. */
  payload: string;
  /** UTF-8 length of `payload`. */
  bytes: number;
  readonly droppable: boolean;
}

export interface MessageQueueLimits {
  /** Droppable messages held at most. */
  maxLines: number;
  /** Payload bytes of droppable messages held at most. */
  maxBytes: number;
}

// Taken and dropped messages leave cleared slots behind; the array is
// rebuilt once there are this many and more than there are messages.
const COMPACT_AFTER_SLOTS = 4096;

export class MessageQueue {
  private slots: Array<QueuedMessage | undefined> = [];
  private head = 0;
  // No droppable message sits before this slot.
  private dropFrom = 0;

  private count = 0;
  private droppableCount = 0;
  private droppableBytes = 0;

  constructor(private readonly limits: MessageQueueLimits) {}

  /** Messages waiting, droppable or not. */
  get length(): number {
    return this.count;
  }

  /** Payload bytes of the droppable messages waiting. */
  get bytes(): number {
    return this.droppableBytes;
  }

  /**
   * Adds a message at the end. Returns the messages dropped to stay within
   * the limits, oldest first; the new message itself may be one of them
   * when it alone is over `maxBytes`.
   */
  push(message: QueuedMessage): QueuedMessage[] {
    this.slots.push(message);
    this.count += 1;
    if (!message.droppable) return [];

    this.droppableCount += 1;
    this.droppableBytes += message.bytes;

    const dropped: QueuedMessage[] = [];
    while (
      this.droppableCount > this.limits.maxLines ||
      this.droppableBytes > this.limits.maxBytes
    ) {
      dropped.push(this.dropOldest());
    }

    if (dropped.length > 0) this.compact();
    return dropped;
  }

  /**
   * Removes and returns messages from the front: at most `maxLines`, and
   * no more than `maxBytes` of payload unless the first alone is bigger.
   */
  take(maxLines: number, maxBytes: number): QueuedMessage[] {
    const taken: QueuedMessage[] = [];
    let bytes = 0;

    while (taken.length < maxLines && this.count > 0) {
      const message = this.slots[this.head];
      if (message === undefined) {
        this.head += 1;
        continue;
      }
      if (taken.length > 0 && bytes + message.bytes > maxBytes) break;

      taken.push(message);
      bytes += message.bytes;
      this.remove(this.head, message);
      this.head += 1;
    }

    this.compact();
    return taken;
  }

  private dropOldest(): QueuedMessage {
    let index = Math.max(this.dropFrom, this.head);
    while (this.slots[index]?.droppable !== true) index += 1;

    const message = this.slots[index]!;
    this.remove(index, message);
    this.dropFrom = index + 1;
    return message;
  }

  private remove(index: number, message: QueuedMessage): void {
    this.slots[index] = undefined;
    this.count -= 1;
    if (message.droppable) {
      this.droppableCount -= 1;
      this.droppableBytes -= message.bytes;
    }
  }

  /** Drops the cleared slots once they outnumber the messages. */
  private compact(): void {
    const cleared = this.slots.length - this.count;
    if (cleared < COMPACT_AFTER_SLOTS || cleared < this.count) return;

    this.slots = this.slots.filter((message) => message !== undefined);
    this.head = 0;
    this.dropFrom = 0;
  }
}
