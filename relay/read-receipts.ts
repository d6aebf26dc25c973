/**
 * Keeps viewers that read slowly from being taken for dead.
 *
 * Engine.IO judges a connection by its answer to a ping every
 * `pingInterval`; the answer must come within `pingTimeout`. A viewer
 * reading a channel faster than it can is sent lines that wait in the
 * kernel's socket buffers, out of the relay's sight, and a ping written
 * behind them is read, and answered, only when the viewer gets to it:
 * tens of seconds later under load. The relay then closes a live viewer,
 * and a string-form viewer cannot resume.
 *
 * So the relay sends pings of its own among the lines: every 256 KiB
 * written to a channel's rooms (channel-feed.ts), and here, once an
 * interval, to every channel that delivered anything or is catching a
 * viewer up. Each is one uWebSockets.js publish to the channel's room,
 * reaching its WebSocket viewers on this node. A viewer that reads at
 * all soon reaches one and answers; each answer clears Engine.IO's
 * pending deadline and starts its interval over.
 * A viewer that reads nothing answers none and times out as before. The
 * same pings reset socket.io-client's own timer, which otherwise closes a
 * connection that has heard no ping for `pingInterval + pingTimeout`.
 */
import { channelName, type Slug } from "../shared/channel-name.ts";
import type { ChannelFeed } from "./channel-feed.ts";
import type { RoomWriter } from "./room-writer.ts";

export class ReadReceipts {
  private timer: NodeJS.Timeout | undefined;
  /** Per feed: what it had delivered at the last round. */
  private readonly seen = new WeakMap<ChannelFeed, number>();

  constructor(
    private readonly rooms: RoomWriter,
    private readonly feeds: ReadonlyMap<Slug, ChannelFeed>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.send(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Pings the viewers of every channel that moved since the last round. */
  private send(): void {
    for (const [slug, feed] of this.feeds) {
      const delivered = feed.delivered;
      const moved = this.seen.get(feed) !== delivered;
      this.seen.set(feed, delivered);
      if (!moved && feed.catchingUp === 0) continue;
      this.rooms.ping(channelName(slug));
    }
  }
}
