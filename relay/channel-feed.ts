/**
 * One node's delivery of one channel to its local viewers, in order, each
 * line once.
 *
 * Every batch the owner broadcasts passes through the feed of each node
 * with viewers. The feed remembers the last seq it delivered, drops what it
 * has already delivered (an old and a new owner overlapping), and fills
 * what it has missed from history before going on (a takeover, a dropped
 * subscription). Because every local delivery happens here, synchronously,
 * a structured viewer can be caught up from history and then joined to the
 * live room at the exact seq where the two meet: no gap and no duplicate at
 * the seam.
 *
 * A live viewer whose connection falls behind (see viewer-backlog.ts) is
 * held back: it leaves the live room at the feed's current position and
 * is sent what it missed from the feed's recent items (recent-lines.ts) at
 * the pace its connection drains, then joins the live room again where it
 * meets the feed. Held-back viewers at the same position share one
 * encoding of each page. A viewer that falls further behind than the
 * node's catch-up budget keeps is disconnected: a structured client
 * resumes from history, a string-form one cannot.
 *
 * Rooms of a slug on a node:
 * - `logs:<slug>`: every viewer; the cluster room the owner broadcasts to.
 * - `logs:<slug>:message`: string-form viewers, one `message` per payload.
 * - `logs:<slug>:logs`: structured viewers that are caught up.
 */
import type { Server, Socket } from "socket.io";
import {
  channelName,
  type ChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import {
  LOGS_EVENT,
  MESSAGE_EVENT,
  STATUS_EVENT,
  type GapNotice,
  type LogsEvent,
  type StatusEvent,
  type ViewerMessage,
} from "../shared/viewer-protocol.ts";
import type { BuildId, Seq } from "../shared/wire.ts";
import type { HistoryReader } from "./history-reader.ts";
import {
  toBatchEntry,
  type BatchEntry,
  type RelayBatch,
} from "./line-batcher.ts";
import {
  RecentLines,
  type MemoryBudget,
  type RecentItem,
} from "./recent-lines.ts";
import { FeedQueue } from "./feed-queue.ts";
import type { RelayMetrics } from "./relay-metrics.ts";
import { writeEncoded, type RoomWriter } from "./room-writer.ts";
import {
  bufferedBytes,
  keptReading,
  type ViewerBacklog,
} from "./viewer-backlog.ts";

/** How many history entries one read (and one replayed event) carries. */
const HISTORY_PAGE_LINES = 1000;
const RETRY_DELAY_MS = 500;
/** Catch-up: how often held-back viewers are looked at, and a page's size. */
const CATCH_UP_TICK_MS = 20;
const CATCH_UP_SLICE_MS = 5;
const CATCH_UP_PAGE_ITEMS = 500;
/** Encoded pages kept for viewers that reach them later. */
const CATCH_UP_CACHED_PAGES = 32;
/** Socket.IO's packet type of an event. */
const SOCKET_IO_EVENT = 2;
/**
 * Live delivery in slices: what a feed may spend before it lets the event
 * loop run (timers, leases, heartbeats, viewers' pongs). Time alone does
 * not measure it: uWebSockets.js copies a publish to its subscribers'
 * buffers partly after the call returns, so a slice also counts socket
 * writes (a line to a string-form viewer is one) and bytes (a line's
 * length times its viewers).
 */
const SLICE_MS = 50;
const SLICE_WRITES = 100_000;
const SLICE_BYTES = 32 * 1024 * 1024;
/**
 * Bytes of live delivery to a channel between two read receipts
 * (read-receipts.ts): read in well under a ping timeout at 25 KiB/s, and
 * few enough pongs that answering them costs viewers little (at 64 KiB
 * the pongs of 1,000 viewers of a 2,000 lines/s build cut what they read
 * by a tenth).
 */
const RECEIPT_BYTES = 256 * 1024;

export function linesRoom(slug: Slug): string {
  return `${channelName(slug)}:message`;
}

export function batchesRoom(slug: Slug): string {
  return `${channelName(slug)}:logs`;
}

export interface FollowRequest {
  since: Seq;
  buildId: BuildId | undefined;
}

export interface FollowStart {
  buildId: BuildId | null;
  lastSeq: Seq;
}

export interface FeedPacing {
  backlog: ViewerBacklog;
  /** Recent lines kept for held-back viewers. */
  budget: MemoryBudget;
  /** Lines waiting in feeds' queues for their turn to be delivered. */
  queued: MemoryBudget;
  rooms: RoomWriter;
}

type Form = "string" | "structured";

interface HeldBackViewer {
  socket: Socket;
  form: Form;
  /** Position of the next recent item the viewer is owed. */
  cursor: number;
  /** Its unsent bytes when last looked at. */
  buffered: number;
}

interface EncodedPage {
  event: string;
  /** Lines the page carries for one viewer. */
  lines: number;
  /** Socket.IO packets, encoded once for every viewer that reaches the page. */
  packets: string[];
}

interface ParkedViewer {
  buildId: BuildId;
  sent: Seq;
  /**
   * The viewer asked for this very build, which the feed has not reached:
   * it waits for it, past any other build. An unpinned viewer that is
   * ahead of a build moves on to the next one when it starts.
   */
  pinned: boolean;
}

export class ChannelFeed {
  readonly channel: ChannelName;
  private buildId: BuildId | undefined;
  private lastSeq: Seq = 0;
  /** Builds the feed moved past, and the last seq delivered of each. */
  private readonly earlierBuilds = new Map<BuildId, Seq>();
  private readonly supersededBuilds = new Set<BuildId>();
  private readonly queue: FeedQueue;
  /** Bytes written to the channel's rooms since its last read receipt. */
  private unreceipted = 0;
  private tail: { buildId: BuildId; seq: Seq } | undefined;
  private busy = true;
  private closed = false;
  private readonly parked = new Map<Socket, ParkedViewer>();
  private readonly following = new Set<Socket>();
  /** Items delivered so far: the position of the next one. */
  private position = 0;
  private readonly recent: RecentLines;
  private readonly heldBack = new Set<HeldBackViewer>();
  private readonly pages = new Map<string, EncodedPage>();
  private catchUpTimer: NodeJS.Timeout | undefined;
  readonly ready: Promise<void>;

  constructor(
    readonly slug: Slug,
    private readonly io: Server,
    private readonly history: HistoryReader,
    private readonly pacing: FeedPacing,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
  ) {
    this.channel = channelName(slug);
    this.recent = new RecentLines(pacing.budget);
    this.queue = new FeedQueue(pacing.queued);
    this.ready = this.start();
  }

  close(): void {
    this.closed = true;
    this.queue.clear();
    this.parked.clear();
    this.following.clear();
    this.heldBack.clear();
    this.pages.clear();
    this.recent.release();
    clearTimeout(this.catchUpTimer);
  }

  /** Items delivered so far, live or gap-filled. */
  get delivered(): number {
    return this.position;
  }

  /** Viewers of this feed being caught up from memory. */
  get catchingUp(): number {
    return this.heldBack.size;
  }

  /** A batch from the owner (this node's or another's). */
  receive(batch: RelayBatch): void {
    if (this.closed) return;
    this.queue.push(batch.entries);
    if (batch.tail) this.tail = batch.tail;
    this.pump();
    if (this.queue.overBudget) this.shed();
  }

  /**
   * Sends a structured viewer the lines after `since` from history, then
   * joins it to the live room where history and live meet. The returned
   * start is what the viewer's acknowledgement reports.
   */
  async follow(
    socket: Socket,
    request: FollowRequest,
    started: (start: FollowStart) => void,
  ): Promise<void> {
    if (this.following.has(socket)) {
      started({ buildId: this.buildId ?? null, lastSeq: this.lastSeq });
      return;
    }
    this.following.add(socket);
    await this.ready;

    let buildId = request.buildId ?? this.buildId;
    if (buildId === undefined) {
      started({ buildId: null, lastSeq: 0 });
      void socket.join(batchesRoom(this.slug));
      return;
    }
    if (
      buildId !== this.buildId &&
      !(await this.history.hasBuild(this.slug, buildId))
    ) {
      // A build that has not started yet (or never will): wait for it.
      started({ buildId, lastSeq: 0 });
      this.parked.set(socket, { buildId, sent: request.since, pinned: true });
      return;
    }
    const lastSeq =
      buildId === this.buildId
        ? this.lastSeq
        : await this.history.lastSeq(this.slug, buildId);
    started({ buildId, lastSeq });

    let sent = request.since;
    while (socket.connected && !this.closed && this.following.has(socket)) {
      if (buildId !== this.buildId) {
        // Not the build this feed delivers: finish it from history.
        sent = await this.replay(socket, buildId, sent, undefined);
        if (buildId === (await this.history.latestBuild(this.slug))) {
          // It is the newest build and this feed has not reached it yet:
          // the feed's first delivery of it past `sent` joins the viewer.
          this.parked.set(socket, { buildId, sent, pinned: true });
          return;
        }
        // An earlier build: go on with the one the feed delivers.
        if (this.buildId === undefined) return;
        buildId = this.buildId;
        sent = 0;
        continue;
      }

      if (sent === this.lastSeq) {
        void socket.join(batchesRoom(this.slug));
        return;
      }
      if (sent > this.lastSeq) {
        // The viewer is ahead of this node's feed; the feed's next
        // delivery past `sent`, or the next build, completes the join.
        this.parked.set(socket, { buildId, sent, pinned: false });
        return;
      }
      sent = await this.replay(socket, buildId, sent, this.lastSeq);
    }
  }

  /** The viewer left the channel or disconnected. */
  forget(socket: Socket): void {
    this.parked.delete(socket);
    this.following.delete(socket);
    for (const viewer of this.heldBack) {
      if (viewer.socket === socket) this.heldBack.delete(viewer);
    }
    if (this.heldBack.size === 0) {
      this.recent.release();
      this.pages.clear();
    }
  }

  /**
   * Takes a live viewer whose connection is behind out of the live room;
   * it is caught up from memory as its connection drains. Returns whether
   * the viewer was live here.
   */
  holdBack(socket: Socket): boolean {
    if (this.closed) return false;
    let held = false;
    for (const form of ["string", "structured"] as const) {
      const room = roomOf(this.slug, form);
      if (!socket.rooms.has(room)) continue;
      void socket.leave(room);
      if (this.heldBack.size === 0) this.recent.reset(this.position);
      this.heldBack.add({
        socket,
        form,
        cursor: this.position,
        buffered: bufferedBytes(socket),
      });
      held = true;
    }
    if (held) this.scheduleCatchUp();
    return held;
  }

  private async start(): Promise<void> {
    while (!this.closed) {
      try {
        const end = await this.history.end(this.slug);
        this.buildId = end?.buildId;
        this.lastSeq = end?.seq ?? 0;
        break;
      } catch (err) {
        this.logger.warn({ err, slug: this.slug }, "history read failed");
        await delay(RETRY_DELAY_MS);
      }
    }
    this.busy = false;
    this.pump();
  }

  /**
   * Delivers what is queued, in order, a slice at a time. A feed that has
   * spent its slice yields to the event loop and goes on in the next turn;
   * entries arriving meanwhile queue behind. Yielding only between
   * deliveries keeps every delivery, and every join to a live room, whole.
   */
  private pump(): void {
    const slice = this.slice();
    while (!this.busy && !this.closed && this.queue.length > 0) {
      const entry = this.queue.peek()!;

      if (entry.seq === undefined || entry.buildId === undefined) {
        this.queue.shift();
        this.deliverForeign(entry);
        continue;
      }
      if (entry.buildId !== this.buildId) {
        if (this.earlierBuilds.has(entry.buildId)) {
          this.queue.shift();
          this.supersede(entry.buildId, entry.seq, entry.payload);
          continue;
        }
        this.startBuild(entry.buildId);
      }
      if (entry.seq <= this.lastSeq) {
        this.queue.shift();
        continue;
      }
      if (entry.seq > this.lastSeq + 1) {
        this.fill(entry.buildId, this.lastSeq + 1, entry.seq - 1);
        return;
      }

      const run: BatchEntry[] = [];
      while (this.queue.length > 0) {
        const next = this.queue.peek()!;
        if (next.buildId !== this.buildId) break;
        if (next.seq !== this.lastSeq + run.length + 1) break;
        if (!slice.take(next)) break;
        run.push(next);
        this.queue.shift();
      }
      if (run.length === 0) {
        this.yieldTurn();
        return;
      }
      this.deliver(run);
    }
    if (!this.busy && !this.closed && this.tail) {
      const tail = this.tail;
      this.tail = undefined;
      if (
        tail.buildId !== this.buildId &&
        !this.earlierBuilds.has(tail.buildId)
      ) {
        this.startBuild(tail.buildId);
      }
      if (tail.buildId === this.buildId && tail.seq > this.lastSeq) {
        this.fill(tail.buildId, this.lastSeq + 1, tail.seq);
      }
    }
  }

  /**
   * Writes a packet to one of the channel's live rooms, and pings its
   * viewers every `RECEIPT_BYTES` written, so that a ping is never far
   * behind in what a slow viewer has to read, however fast the lines came.
   */
  private publish(room: string, packet: string): void {
    this.pacing.rooms.publish(room, packet);
    this.unreceipted += packet.length;
    if (this.unreceipted < RECEIPT_BYTES) return;
    this.unreceipted = 0;
    this.pacing.rooms.ping(this.channel);
  }

  /**
   * A line of a build the feed has moved past: a newer build of the slug
   * started while this one still ran. String-form viewers get it live, as
   * the single server did, each seq once; the feed's structured delivery
   * and catch-up follow one build at a time, so structured viewers get it
   * from history (asking for that build). Counted, and said once per build.
   */
  private supersede(buildId: BuildId, seq: Seq, payload: string): void {
    if (seq <= this.earlierBuilds.get(buildId)!) return;
    this.earlierBuilds.set(buildId, seq);
    this.metrics.supersededLines.inc();
    this.deliverToStringViewers(payload);

    if (this.supersededBuilds.has(buildId)) return;
    this.supersededBuilds.add(buildId);
    this.logger.warn(
      { slug: this.slug, buildId, current: this.buildId },
      "lines of an earlier build after a newer one started; only string-form viewers get them live",
    );
  }

  /**
   * The node's waiting lines passed their budget (the feed cannot deliver
   * as fast as lines come): the queue keeps only the newest entry of each
   * build, and the feed reads the lines before it from history when it
   * gets there (feed-queue.ts), so nothing is lost and memory stays
   * bounded; history's reads are paged.
   */
  private shed(): void {
    const shed = this.queue.shed();
    if (shed.lines === 0) return;
    this.metrics.shedLines.inc(shed.lines);
    this.logger.warn(
      {
        slug: this.slug,
        lines: shed.lines,
        bytes: shed.bytes,
        budgetBytes: this.pacing.queued.limitBytes,
      },
      "lines waiting for delivery passed the node's budget; they will be read back from history",
    );
  }

  /** Goes on delivering in the next turn of the event loop. */
  private yieldTurn(): void {
    this.busy = true;
    this.metrics.deliveryYields.inc();
    setImmediate(() => {
      this.busy = false;
      this.pump();
    });
  }

  /** This node's viewers of the channel in each live room. */
  private viewerCounts(): { string: number; structured: number } {
    const rooms = this.io.of("/").adapter.rooms;
    return {
      string: rooms.get(linesRoom(this.slug))?.size ?? 0,
      structured: rooms.get(batchesRoom(this.slug))?.size ?? 0,
    };
  }

  /** A new slice of delivery to this node's viewers of the channel. */
  private slice(): DeliverySlice {
    const viewers = this.viewerCounts();
    return new DeliverySlice(
      viewers.string,
      viewers.string + viewers.structured,
    );
  }

  /** Delivers history entries a slice at a time, yielding between slices. */
  private async deliverInSlices(entries: BatchEntry[]): Promise<void> {
    let at = 0;
    while (at < entries.length && !this.closed) {
      const slice = this.slice();
      let end = at;
      while (end < entries.length && slice.take(entries[end]!)) end += 1;
      this.deliver(entries.slice(at, end));
      at = end;
      if (at < entries.length) {
        this.metrics.deliveryYields.inc();
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  private startBuild(buildId: BuildId): void {
    if (this.buildId !== undefined) {
      this.earlierBuilds.set(this.buildId, this.lastSeq);
    }
    this.buildId = buildId;
    this.lastSeq = 0;

    // Viewers that had everything of an earlier build follow this one.
    for (const parked of this.parked.values()) {
      if (parked.pinned || parked.buildId === buildId) continue;
      parked.buildId = buildId;
      parked.sent = 0;
    }
  }

  /** Reads `fromSeq..toSeq` from history, delivers it, then goes on. */
  private fill(buildId: BuildId, fromSeq: Seq, toSeq: Seq): void {
    this.busy = true;

    const run = async (): Promise<void> => {
      let next = fromSeq;
      while (next <= toSeq && !this.closed) {
        let entries;
        try {
          entries = await this.history.range(
            this.slug,
            buildId,
            next,
            toSeq,
            HISTORY_PAGE_LINES,
          );
        } catch (err) {
          this.logger.warn({ err, slug: this.slug }, "history fill failed");
          await delay(RETRY_DELAY_MS);
          continue;
        }

        const firstSeq = entries[0]?.seq ?? toSeq + 1;
        if (firstSeq > next) {
          this.deliverGap(gapNotice(buildId, next, firstSeq - 1));
        }
        if (entries.length > 0) {
          await this.deliverInSlices(
            entries.map((e) => toBatchEntry(e.payload)),
          );
          this.metrics.replayedLines.inc(entries.length);
        }
        next = (entries.at(-1)?.seq ?? toSeq) + 1;
      }
    };

    run()
      .catch((err: unknown) => {
        this.logger.error({ err, slug: this.slug }, "history fill stopped");
      })
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  /** Delivers consecutive entries of the current build to every local viewer. */
  private deliver(entries: BatchEntry[]): void {
    if (entries.length === 0) return;

    const { string: stringViewers, structured: structuredViewers } =
      this.viewerCounts();

    if (stringViewers > 0) {
      const room = linesRoom(this.slug);
      for (const entry of entries) {
        this.publish(room, this.encodeEvent(MESSAGE_EVENT, entry.payload));
      }
      this.metrics.framesEmitted.inc({ event: MESSAGE_EVENT }, entries.length);
    }

    const messages = parseMessages(entries);
    if (structuredViewers > 0) {
      this.emitBatch(batchesRoom(this.slug), messages);
    }
    this.metrics.linesDelivered.inc(
      entries.length * (stringViewers + structuredViewers),
    );

    this.lastSeq = entries.at(-1)!.seq!;
    if (this.heldBack.size > 0) {
      for (const entry of entries) {
        this.recent.append({
          payload: entry.payload,
          message: parseMessage(entry.payload),
        });
      }
    }
    this.position += entries.length;
    this.releaseParked(messages);
  }

  /** A payload without seq (not from our builder): passed on as it is. */
  private deliverForeign(entry: BatchEntry): void {
    this.metrics.malformedPayloads.inc();
    this.deliverToStringViewers(entry.payload);
  }

  /**
   * A payload outside the current build's sequence, for string-form
   * viewers only: published as it is, and kept for held-back ones.
   */
  private deliverToStringViewers(payload: string): void {
    this.remember({ payload, message: undefined });
    const viewers = this.viewerCounts().string;
    if (viewers === 0) return;
    this.publish(
      linesRoom(this.slug),
      this.encodeEvent(MESSAGE_EVENT, payload),
    );
    this.metrics.framesEmitted.inc({ event: MESSAGE_EVENT });
    this.metrics.linesDelivered.inc(viewers);
  }

  /** Counts one delivered item, kept while viewers are held back. */
  private remember(item: RecentItem): void {
    if (this.heldBack.size > 0) this.recent.append(item);
    this.position += 1;
  }

  private deliverGap(notice: GapNotice): void {
    this.logger.warn(
      { slug: this.slug, fromSeq: notice.fromSeq, toSeq: notice.toSeq },
      "lines missing from history",
    );
    const payload = JSON.stringify(notice);
    this.publish(
      linesRoom(this.slug),
      this.encodeEvent(MESSAGE_EVENT, payload),
    );
    this.emitBatch(batchesRoom(this.slug), [notice]);
    this.lastSeq = notice.toSeq;
    this.remember({ payload, message: notice });
  }

  private scheduleCatchUp(): void {
    if (this.catchUpTimer !== undefined || this.closed) return;
    this.catchUpTimer = setTimeout(() => {
      this.catchUpTimer = undefined;
      this.catchUp();
    }, CATCH_UP_TICK_MS);
  }

  /**
   * Sends held-back viewers with room their next page; a viewer with
   * nothing left to catch up joins the live room again.
   */
  private catchUp(): void {
    if (this.closed) return;

    // A bounded slice of work per tick, so that live delivery, leases and
    // heartbeats keep their turn; who was served goes to the back.
    const deadline = performance.now() + CATCH_UP_SLICE_MS;
    for (const viewer of [...this.heldBack]) {
      if (!viewer.socket.connected) {
        this.heldBack.delete(viewer);
      } else if (viewer.cursor < this.recent.start) {
        this.heldBack.delete(viewer);
        this.dropBehind(viewer);
      } else if (viewer.cursor === this.recent.end) {
        // Caught up: nothing is delivered between this check and the join.
        this.heldBack.delete(viewer);
        void viewer.socket.join(roomOf(this.slug, viewer.form));
      } else {
        // Less waiting than last time: the viewer reads, so it is alive.
        const buffered = bufferedBytes(viewer.socket);
        if (buffered < viewer.buffered) keptReading(viewer.socket);
        viewer.buffered = buffered;
        if (!this.pacing.backlog.hasRoom(viewer.socket)) continue;

        this.sendPage(viewer);
        viewer.buffered = bufferedBytes(viewer.socket);
        this.heldBack.delete(viewer);
        this.heldBack.add(viewer);
        if (performance.now() > deadline) break;
      }
    }

    let oldest = this.recent.end;
    for (const viewer of this.heldBack) {
      oldest = Math.min(oldest, viewer.cursor);
    }
    if (this.heldBack.size === 0) {
      this.recent.release();
      this.pages.clear();
    } else {
      this.recent.trimTo(oldest);
      this.scheduleCatchUp();
    }
  }

  /**
   * Pages end at multiples of `CATCH_UP_PAGE_ITEMS` (or earlier, at the
   * backlog's page size), so viewers catching up at different moments
   * ask for the same pages, and each page is encoded once.
   */
  private sendPage(viewer: HeldBackViewer): void {
    const { cursor, form } = viewer;
    const boundary =
      (Math.floor(cursor / CATCH_UP_PAGE_ITEMS) + 1) * CATCH_UP_PAGE_ITEMS;
    const items = this.recent.slice(
      cursor,
      boundary - cursor,
      this.pacing.backlog.pageBytes,
    );
    const end = cursor + items.length;

    const key = `${form}:${cursor}:${end}`;
    let page = this.pages.get(key);
    if (page === undefined) {
      page = this.encodePage(form, items);
      this.pages.set(key, page);
      if (this.pages.size > CATCH_UP_CACHED_PAGES) {
        this.pages.delete(this.pages.keys().next().value!);
      }
    }

    writeEncoded(viewer.socket, page.packets);
    this.metrics.framesEmitted.inc({ event: page.event }, page.packets.length);
    this.metrics.linesDelivered.inc(page.lines);
    this.metrics.caughtUpLines.inc(page.lines);
    viewer.cursor = end;
  }

  private encodePage(form: Form, items: RecentItem[]): EncodedPage {
    if (form === "string") {
      return {
        event: MESSAGE_EVENT,
        lines: items.length,
        packets: items.map((item) =>
          this.encodeEvent(MESSAGE_EVENT, item.payload),
        ),
      };
    }

    const messages = items.flatMap((item) =>
      item.message === undefined ? [] : [item.message],
    );
    if (messages.length === 0) {
      return { event: LOGS_EVENT, lines: 0, packets: [] };
    }
    const logs: LogsEvent = { channel: this.channel, messages };
    const packets = [this.encodeEvent(LOGS_EVENT, logs)];
    for (const message of messages) {
      if (message.type !== "status") continue;
      const status: StatusEvent = { ...message, channel: this.channel };
      packets.push(this.encodeEvent(STATUS_EVENT, status));
    }
    return { event: LOGS_EVENT, lines: messages.length, packets };
  }

  private encodeEvent(event: string, data: unknown): string {
    const [packet] = this.io.encoder.encode({
      type: SOCKET_IO_EVENT,
      nsp: "/",
      data: [event, data],
    }) as string[];
    return packet!;
  }

  /** Past what memory keeps: disconnect, so that the client can resume. */
  private dropBehind(viewer: HeldBackViewer): void {
    this.metrics.slowViewerDisconnects.inc({ reason: "behind" });
    this.logger.warn(
      { socketId: viewer.socket.id, slug: this.slug, form: viewer.form },
      "viewer fell behind the catch-up buffer; disconnected",
    );
    viewer.socket.conn.close();
  }

  private releaseParked(messages: ViewerMessage[]): void {
    if (this.parked.size === 0) return;

    for (const [socket, parked] of this.parked) {
      if (parked.buildId !== this.buildId || parked.sent > this.lastSeq)
        continue;
      this.parked.delete(socket);
      if (!socket.connected) continue;

      const rest = messages.filter((m) => "seq" in m && m.seq > parked.sent);
      if (rest.length > 0) this.emitBatch(socket, rest);
      void socket.join(batchesRoom(this.slug));
    }
  }

  /**
   * Sends `buildId` from history after `since`, up to `toSeq` (or its end),
   * straight to one viewer. Returns the last seq sent.
   */
  private async replay(
    socket: Socket,
    buildId: BuildId,
    since: Seq,
    toSeq: Seq | undefined,
  ): Promise<Seq> {
    let sent = since;
    for (;;) {
      if (!socket.connected || this.closed || !this.following.has(socket)) {
        return sent;
      }
      // History goes out no faster than the viewer's connection drains.
      await this.pacing.backlog.untilRoom(
        socket,
        () => !this.closed && this.following.has(socket),
      );
      let entries;
      try {
        entries = await this.history.range(
          this.slug,
          buildId,
          sent + 1,
          toSeq,
          HISTORY_PAGE_LINES,
        );
      } catch (err) {
        // Valkey away for a moment: the viewer was already acknowledged, so
        // it waits for history rather than being left without lines.
        this.logger.warn({ err, slug: this.slug }, "history replay failed");
        await delay(RETRY_DELAY_MS);
        continue;
      }
      if (!socket.connected || this.closed || !this.following.has(socket)) {
        return sent;
      }
      const firstSeq = entries[0]?.seq;
      const end = toSeq ?? firstSeq ?? sent;
      const messages: ViewerMessage[] = [];
      if (firstSeq === undefined ? end > sent : firstSeq > sent + 1) {
        const gapEnd = firstSeq === undefined ? end : firstSeq - 1;
        messages.push(gapNotice(buildId, sent + 1, gapEnd));
        sent = gapEnd;
      }
      messages.push(
        ...parseMessages(entries.map((e) => toBatchEntry(e.payload))),
      );
      if (messages.length > 0) this.emitBatch(socket, messages);
      this.metrics.replayedLines.inc(entries.length);

      if (entries.length === 0) return sent;
      sent = entries.at(-1)!.seq;
      if (entries.length < HISTORY_PAGE_LINES) return sent;
    }
  }

  /** Sends a `logs` event, and a `status` event per status message, to a room or one viewer. */
  private emitBatch(to: string | Socket, messages: ViewerMessage[]): void {
    const write =
      typeof to === "string"
        ? (packet: string) => this.publish(to, packet)
        : (packet: string) => writeEncoded(to, [packet]);
    const event: LogsEvent = { channel: this.channel, messages };
    write(this.encodeEvent(LOGS_EVENT, event));
    this.metrics.framesEmitted.inc({ event: LOGS_EVENT });

    for (const message of messages) {
      if (message.type !== "status") continue;
      const status: StatusEvent = { ...message, channel: this.channel };
      write(this.encodeEvent(STATUS_EVENT, status));
      this.metrics.framesEmitted.inc({ event: STATUS_EVENT });
    }
  }
}

/** What one slice of delivery has spent; see `SLICE_MS`. */
class DeliverySlice {
  private readonly started = performance.now();
  private taken = 0;
  private writes = 0;
  private bytes = 0;

  constructor(
    private readonly stringViewers: number,
    private readonly viewers: number,
  ) {}

  /** Whether one more entry fits; the first of a slice always does. */
  take(entry: BatchEntry): boolean {
    const writes = this.writes + this.stringViewers;
    const bytes = this.bytes + entry.payload.length * this.viewers;
    if (
      this.taken > 0 &&
      (writes > SLICE_WRITES ||
        bytes > SLICE_BYTES ||
        performance.now() - this.started >= SLICE_MS)
    ) {
      return false;
    }
    this.taken += 1;
    this.writes = writes;
    this.bytes = bytes;
    return true;
  }
}

export function roomOf(slug: Slug, form: Form): string {
  return form === "string" ? linesRoom(slug) : batchesRoom(slug);
}

function parseMessage(payload: string): ViewerMessage | undefined {
  try {
    return JSON.parse(payload) as ViewerMessage;
  } catch {
    return undefined;
  }
}

function parseMessages(entries: BatchEntry[]): ViewerMessage[] {
  const messages: ViewerMessage[] = [];
  for (const entry of entries) {
    try {
      messages.push(JSON.parse(entry.payload) as ViewerMessage);
    } catch {
      // toBatchEntry already refused it a seq; nothing to show here.
    }
  }
  return messages;
}

function gapNotice(buildId: BuildId, fromSeq: Seq, toSeq: Seq): GapNotice {
  const count = toSeq - fromSeq + 1;
  return {
    type: "gap",
    buildId,
    fromSeq,
    toSeq,
    stream: "system",
    log: `${count} log line${count === 1 ? "" : "s"} (${fromSeq}-${toSeq}) are no longer kept and cannot be shown`,
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
