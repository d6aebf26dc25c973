/**
 * The owner's side of forwarding: gathers the payloads it reads from a
 * channel for up to `batchWindowMs` (or `batchMaxLines`) and hands each
 * batch on once, to be broadcast to every node with viewers.
 *
 * One batch crosses Valkey once per node with viewers, however many lines
 * and viewers it carries; that is what keeps Valkey traffic per delivered
 * line low.
 */
import type { Slug } from "../shared/channel-name.ts";
import type { BuildId, Seq } from "../shared/wire.ts";
import { isBuildId } from "../shared/wire.ts";

/** One payload as it travels between nodes. */
export interface BatchEntry {
  /** The JSON string exactly as published. */
  payload: string;
  /** Absent for a payload that is not a message of the protocol. */
  buildId?: BuildId;
  seq?: Seq;
  /** The builder's read time, for the latency histogram. */
  ts?: number;
}

/**
 * What the owner broadcasts to the nodes of a channel. `tail` says how far
 * history reaches, so a node can fill a gap that no later line reveals
 * (the last lines of a build published while ownership moved).
 */
export interface RelayBatch {
  slug: Slug;
  entries: BatchEntry[];
  tail?: { buildId: BuildId; seq: Seq };
}

export interface LineBatcherOptions {
  batchWindowMs: number;
  batchMaxLines: number;
}

export class LineBatcher {
  private readonly pending = new Map<Slug, BatchEntry[]>();
  private readonly timers = new Map<Slug, NodeJS.Timeout>();

  constructor(
    private readonly options: LineBatcherOptions,
    private readonly flushBatch: (batch: RelayBatch) => void,
  ) {}

  add(slug: Slug, payload: string): void {
    let entries = this.pending.get(slug);
    if (!entries) {
      entries = [];
      this.pending.set(slug, entries);
    }
    entries.push(toBatchEntry(payload));

    if (entries.length >= this.options.batchMaxLines) {
      this.flush(slug);
    } else if (!this.timers.has(slug)) {
      this.timers.set(
        slug,
        setTimeout(() => this.flush(slug), this.options.batchWindowMs),
      );
    }
  }

  /** Sends what is pending for the slug now. */
  flush(slug: Slug): void {
    clearTimeout(this.timers.get(slug));
    this.timers.delete(slug);

    const entries = this.pending.get(slug);
    this.pending.delete(slug);
    if (entries && entries.length > 0) this.flushBatch({ slug, entries });
  }

  flushAll(): void {
    for (const slug of [...this.pending.keys()]) this.flush(slug);
  }
}

/** Reads the seq and build of a payload, when it is a message of the protocol. */
export function toBatchEntry(payload: string): BatchEntry {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { payload };
  }
  if (typeof value !== "object" || value === null) return { payload };

  const { buildId, seq, ts } = value as Record<string, unknown>;
  if (
    !isBuildId(buildId) ||
    !Number.isSafeInteger(seq) ||
    (seq as number) < 1
  ) {
    return { payload };
  }
  return {
    payload,
    buildId,
    seq: seq as number,
    ts: typeof ts === "number" ? ts : undefined,
  };
}
