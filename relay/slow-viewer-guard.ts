/**
 * Finds live viewers that cannot keep up and hands them to catch-up before
 * anything is lost.
 *
 * uWebSockets.js skips a publish to a WebSocket whose send buffer is over
 * its `maxBackpressure`, silently. The relay sets that limit well above
 * `slowViewerBufferBytes` and checks every viewer's backlog on an interval
 * (viewer-backlog.ts). A viewer over it leaves the live rooms of its
 * channels and each feed sends it what it missed as its connection drains
 * (channel-feed.ts). A viewer whose buffer still passes `hardLimitBytes`
 * (something kept writing to it) is disconnected: a structured client then
 * resumes from the last seq it saw.
 *
 * The same check sees which viewers are reading through a backlog (see
 * `watchReading`). Its cost is two native calls per viewer per check; with
 * 10,000 viewers and a 250 ms interval that is 80,000 calls a second.
 */
import type { Server, Socket } from "socket.io";
import { parseChannelName, type Slug } from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import type { ChannelFeed } from "./channel-feed.ts";
import type { RelayMetrics } from "./relay-metrics.ts";
import {
  bufferedBytes,
  keptReading,
  type ViewerBacklog,
} from "./viewer-backlog.ts";

export interface SlowViewerGuardOptions {
  slowViewerCheckIntervalMs: number;
  hardLimitBytes: number;
}

export interface GuardCheck {
  heldBack: number;
  disconnected: number;
}

export class SlowViewerGuard {
  private timer: NodeJS.Timeout | undefined;
  private readonly lastBuffered = new WeakMap<Socket, number>();

  constructor(
    private readonly io: Server,
    private readonly feeds: ReadonlyMap<Slug, ChannelFeed>,
    private readonly backlog: ViewerBacklog,
    private readonly options: SlowViewerGuardOptions,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(
      () => this.check(),
      this.options.slowViewerCheckIntervalMs,
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  check(): GuardCheck {
    const result: GuardCheck = { heldBack: 0, disconnected: 0 };
    for (const socket of this.io.of("/").sockets.values()) {
      this.watchReading(socket);
      const reason = this.backlog.behind(socket);
      if (reason === undefined) continue;

      if (bufferedBytes(socket) > this.options.hardLimitBytes) {
        result.disconnected += 1;
        this.metrics.slowViewerDisconnects.inc({ reason: "buffer" });
        this.logger.warn(
          { socketId: socket.id },
          "viewer over the hard buffer limit; disconnected",
        );
        socket.conn.close();
        continue;
      }

      let held = false;
      for (const room of socket.rooms) {
        const slug = parseChannelName(room);
        if (slug === undefined) continue;
        if (this.feeds.get(slug)?.holdBack(socket)) held = true;
      }
      if (!held) continue;
      result.heldBack += 1;
      this.metrics.viewersHeldBack.inc({ reason });
      this.logger.debug({ socketId: socket.id, reason }, "viewer held back");
    }
    return result;
  }

  /**
   * A viewer whose unsent bytes went down since the last check is reading:
   * alive, though its answer to a ping may wait behind that data (after a
   * build ends, a viewer can have minutes of it to read).
   */
  private watchReading(socket: Socket): void {
    const buffered = bufferedBytes(socket);
    const before = this.lastBuffered.get(socket);
    if (before !== undefined && buffered < before) keptReading(socket);
    if (buffered > 0) this.lastBuffered.set(socket, buffered);
    else this.lastBuffered.delete(socket);
  }
}
