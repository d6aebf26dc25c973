/**
 * Moves an owner's batches to every node with viewers of the channel, this
 * one included, and hands the batches other nodes broadcast to this node's
 * feeds.
 *
 * Batches travel as an internal Socket.IO event through the sharded adapter
 * to the room `logs:<slug>`, so only nodes with viewers of the slug receive
 * them, once each. The broadcast excludes the room itself, so the adapter
 * delivers the event to no socket anywhere; each node takes it out of the
 * adapter's message path instead (`tap`) and gives it to its feed.
 */
import type { Server } from "socket.io";
import { channelName, isSlug, type Slug } from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import { isBuildId } from "../shared/wire.ts";
import type { ChannelFeed } from "./channel-feed.ts";
import type { ChannelOwner } from "./channel-owner.ts";
import type { HistoryEnd, HistoryReader } from "./history-reader.ts";
import {
  LineBatcher,
  type LineBatcherOptions,
  type RelayBatch,
} from "./line-batcher.ts";
import type { RelayMetrics } from "./relay-metrics.ts";

/** The internal event an owner broadcasts its batches with. */
const FEED_EVENT = "relay:batch";

/** History must be ahead of the owner at the first of this many checks, two intervals back. */
const TAIL_CHECKS = 3;

/** The cluster adapter's message type for a room broadcast. */
const BROADCAST = 3;

interface ClusterMessage {
  uid?: string;
  nsp?: string;
  type: number;
  data?: { packet?: { data?: unknown } };
}

export interface BatchBroadcasterOptions extends LineBatcherOptions {
  /** How often owned channels' history ends are checked. */
  leaseRenewIntervalMs: number;
}

export class BatchBroadcaster {
  private readonly batcher: LineBatcher;
  /** Per owned slug: the last message this node broadcast. */
  private readonly forwarded = new Map<Slug, HistoryEnd>();
  /** Per owned slug: the history ends seen at the last checks, oldest first. */
  private readonly tails = new Map<Slug, HistoryEnd[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: Server,
    private readonly owner: ChannelOwner,
    private readonly history: HistoryReader,
    private readonly feeds: ReadonlyMap<Slug, ChannelFeed>,
    private readonly options: BatchBroadcasterOptions,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
  ) {
    this.batcher = new LineBatcher(options, (batch) => this.broadcast(batch));

    owner.on("acquired", (slug) => {
      this.forget(slug);
      this.sendTail(slug);
    });
    owner.on("lost", (slug) => {
      this.batcher.flush(slug);
      this.forget(slug);
    });
  }

  start(): void {
    this.timer = setInterval(() => {
      this.checkTails().catch((err: unknown) => {
        this.logger.warn({ err }, "history tail check failed");
      });
    }, this.options.leaseRenewIntervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.batcher.flushAll();
  }

  /** A payload this node read as the channel's owner. */
  forward(slug: Slug, payload: string): void {
    this.metrics.linesReceived.inc();
    this.batcher.add(slug, payload);
  }

  /**
   * Routes the batches other nodes broadcast into this node's feeds; every
   * other adapter message goes on as before.
   */
  tap(adapter: object): void {
    const clusterAdapter = adapter as {
      uid: string;
      onMessage(message: ClusterMessage, offset?: string): unknown;
    };
    const onMessage = clusterAdapter.onMessage.bind(clusterAdapter);

    clusterAdapter.onMessage = (message, offset) => {
      // Sharded pub/sub echoes a node's own publishes back to it; the owner
      // has already fed its own batch locally.
      const fromOther =
        message.uid !== clusterAdapter.uid && message.nsp === "/";
      const data =
        fromOther && message.type === BROADCAST
          ? message.data?.packet?.data
          : undefined;
      if (!Array.isArray(data) || data[0] !== FEED_EVENT) {
        return this.passOn(onMessage, message, offset);
      }

      const batch: unknown = data[1];
      if (!isRelayBatch(batch)) {
        this.logger.warn("malformed batch from another node");
        return;
      }
      this.feeds.get(batch.slug)?.receive(batch);
    };
  }

  /**
   * The adapter reads fields of a message without checking they exist; a
   * forged message on its channel would throw inside the Valkey client's
   * event handler and end the process.
   */
  private passOn(
    onMessage: (message: ClusterMessage, offset?: string) => unknown,
    message: ClusterMessage,
    offset: string | undefined,
  ): unknown {
    try {
      return onMessage(message, offset);
    } catch (err) {
      this.logger.warn({ err }, "malformed adapter message");
      return undefined;
    }
  }

  private broadcast(batch: RelayBatch): void {
    const now = Date.now();
    for (const entry of batch.entries) {
      if (entry.ts !== undefined) {
        this.metrics.deliveryLatency.observe(
          Math.max(0, now - entry.ts) / 1000,
        );
      }
      if (entry.seq !== undefined && entry.buildId !== undefined) {
        this.forwarded.set(batch.slug, {
          buildId: entry.buildId,
          seq: entry.seq,
        });
      }
    }

    const room = channelName(batch.slug);
    this.io.to(room).except(room).emit(FEED_EVENT, batch);
    this.feeds.get(batch.slug)?.receive(batch);
  }

  private forget(slug: Slug): void {
    this.forwarded.delete(slug);
    this.tails.delete(slug);
  }

  /**
   * A new owner tells the nodes where history ends, so lines published
   * while nobody owned the channel reach viewers without waiting for the
   * next line to reveal the gap.
   */
  private sendTail(slug: Slug): void {
    this.history.end(slug).then(
      (end) => {
        if (end && this.owner.isOwner(slug)) {
          this.broadcast({ slug, entries: [], tail: end });
        }
      },
      (err: unknown) => {
        this.logger.warn({ err, slug }, "history tail read failed");
      },
    );
  }

  /**
   * Tells the nodes how far history reaches when it is ahead of what this
   * owner forwarded for `TAIL_CHECKS` whole check intervals: lines
   * published before the subscription was in place, or lost by a dropped
   * subscription. One interval is not enough: a busy process can hold
   * lines unread in its socket for longer, and a false alarm makes every
   * node read history for nothing.
   */
  private async checkTails(): Promise<void> {
    for (const slug of this.owner.ownedSlugs()) {
      const end = await this.history.end(slug).catch(() => undefined);
      if (end === undefined) continue;

      const seen = this.tails.get(slug) ?? [];
      seen.push(end);
      if (seen.length > TAIL_CHECKS) seen.shift();
      this.tails.set(slug, seen);

      const oldest = seen[0]!;
      if (seen.length < TAIL_CHECKS || oldest.buildId !== end.buildId) continue;

      const forwarded = this.forwarded.get(slug);
      const behind =
        forwarded === undefined ||
        forwarded.buildId !== oldest.buildId ||
        forwarded.seq < oldest.seq;
      if (behind && this.owner.isOwner(slug)) {
        this.logger.info({ slug, seq: oldest.seq }, "forwarding history tail");
        this.broadcast({ slug, entries: [], tail: oldest });
      }
    }
  }
}

/**
 * Checks a batch read from Valkey field by field: anyone who can publish on
 * the adapter's channels can put anything there, and a bad one must be
 * dropped, not crash the node.
 */
function isRelayBatch(value: unknown): value is RelayBatch {
  if (typeof value !== "object" || value === null) return false;
  const batch = value as Partial<RelayBatch>;
  if (!isSlug(batch.slug) || !Array.isArray(batch.entries)) return false;
  if (batch.tail !== undefined && !isPosition(batch.tail)) return false;
  return batch.entries.every(isBatchEntry);
}

function isBatchEntry(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Record<string, unknown>;
  if (typeof entry.payload !== "string") return false;
  if (entry.seq === undefined && entry.buildId === undefined) return true;
  return isPosition({ buildId: entry.buildId, seq: entry.seq });
}

function isPosition(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const { buildId, seq } = value as Record<string, unknown>;
  return (
    isBuildId(buildId) && Number.isSafeInteger(seq) && (seq as number) >= 0
  );
}
