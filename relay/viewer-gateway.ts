/**
 * What a viewer's connection may do: subscribe (either form), unsubscribe,
 * and leave. Requests are checked by subscribe-handler.ts; accepted ones
 * join the rooms of relay/channel-feed.ts.
 */
import type { Socket } from "socket.io";
import {
  channelName,
  parseChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import {
  MESSAGE_EVENT,
  SUBSCRIBE_EVENT,
  UNSUBSCRIBE_EVENT,
  type SubscribeAck,
  type UnsubscribeAck,
} from "../shared/viewer-protocol.ts";
import { batchesRoom, linesRoom, type ChannelFeed } from "./channel-feed.ts";
import type { ChannelOwner } from "./channel-owner.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";
import type { RelayMetrics } from "./relay-metrics.ts";
import {
  parseSubscribeRequest,
  refuse,
  type SubscribeRequest,
} from "./subscribe-handler.ts";

/** Longest wait before `Joined` for a channel nobody forwards yet. */
const FORWARDING_WAIT_MS = 3000;

type Ack = (answer: SubscribeAck) => void;

export interface ViewerGatewayOptions {
  maxChannelsPerSocket: number;
}

export class ViewerGateway {
  constructor(
    private readonly feeds: ReadonlyMap<Slug, ChannelFeed>,
    private readonly owner: ChannelOwner,
    private readonly options: ViewerGatewayOptions,
    private readonly metrics: RelayMetrics,
    private readonly logger: Logger,
    private readonly isDraining: () => boolean,
  ) {}

  /** One set of listeners for every connection: see `sharedListeners`. */
  private readonly listeners = sharedListeners(this);

  /** Serves one new connection. */
  accept(socket: Socket): void {
    socket.on(SUBSCRIBE_EVENT, this.listeners.subscribe);
    socket.on(UNSUBSCRIBE_EVENT, this.listeners.unsubscribe);
    socket.on("disconnecting", this.listeners.disconnecting);
    socket.on("disconnect", this.listeners.disconnect);
  }

  /** A `subscribe` event, either form. */
  onSubscribe(socket: Socket, raw: unknown, ack: unknown): void {
    const reply = typeof ack === "function" ? (ack as Ack) : undefined;
    try {
      this.subscribe(socket, parseSubscribeRequest(raw), reply);
    } catch (err) {
      if (!(err instanceof RelayError)) throw err;
      this.metrics.subscribeRefusals.inc({ reason: err.code });
      this.logger.info(
        { code: err.code, socketId: socket.id },
        "subscribe refused",
      );
      refuse(socket, err, reply);
    }
  }

  private subscribe(
    socket: Socket,
    request: SubscribeRequest,
    ack: Ack | undefined,
  ): void {
    if (this.isDraining()) {
      throw new RelayError(RelayErrorCode.UNAVAILABLE, "node is shutting down");
    }
    const { slug } = request;
    const channel = channelName(slug);

    if (!socket.rooms.has(channel)) {
      const followed = [...socket.rooms].filter(
        (r) => parseChannelName(r) !== undefined,
      );
      if (followed.length >= this.options.maxChannelsPerSocket) {
        throw new RelayError(
          RelayErrorCode.TOO_MANY_CHANNELS,
          "this connection follows as many channels as allowed",
        );
      }
      // Joining the cluster room creates this node's feed of the channel
      // and makes the node a contender for its lease.
      void socket.join(channel);
    }

    if (request.form === "string") {
      this.joinLines(socket, slug, ack);
    } else {
      this.follow(socket, request, ack);
    }
  }

  /** `Joined` promises the lines after it: it waits until someone forwards. */
  private joinLines(socket: Socket, slug: Slug, ack: Ack | undefined): void {
    const channel = channelName(slug);

    this.untilForwarded(slug).then(
      () => {
        if (!socket.connected || !socket.rooms.has(channel)) return;
        void socket.join(linesRoom(slug));
        socket.emit(MESSAGE_EVENT, `Joined ${channel}`);
        ack?.({ ok: true, channel, buildId: null, lastSeq: 0 });
      },
      (err: unknown) => {
        this.logger.warn({ err, slug }, "subscribe failed");
      },
    );
  }

  private follow(
    socket: Socket,
    request: Extract<SubscribeRequest, { form: "structured" }>,
    ack: Ack | undefined,
  ): void {
    const { slug } = request;
    const channel = channelName(slug);

    let acknowledged = false;
    this.feeds
      .get(slug)!
      .follow(socket, request, (start) => {
        acknowledged = true;
        ack?.({ ok: true, channel, ...start });
      })
      .catch((err: unknown) => {
        this.logger.warn({ err, slug }, "catch-up from history failed");
        if (acknowledged) {
          // The viewer believes it is subscribed: close its connection, so
          // that its client subscribes again from the last seq it has.
          socket.conn.close();
          return;
        }
        this.metrics.subscribeRefusals.inc({
          reason: RelayErrorCode.UNAVAILABLE,
        });
        this.leave(socket, slug);
        ack?.({
          ok: false,
          error: new RelayError(
            RelayErrorCode.UNAVAILABLE,
            "history is not reachable right now; subscribe again",
          ).toJSON(),
        });
      });
  }

  /**
   * Resolves once this node's feed of the slug is ready and a node holds
   * the channel's subscription, or after `FORWARDING_WAIT_MS` at most: the
   * viewer is served either way, and history fills what a late owner
   * missed.
   */
  private async untilForwarded(slug: Slug): Promise<void> {
    const deadline = Date.now() + FORWARDING_WAIT_MS;
    await this.feeds.get(slug)?.ready;

    while (Date.now() < deadline) {
      const owned = await this.owner.hasOwner(slug).catch(() => false);
      if (owned) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The connection has ended. */
  left(socket: Socket, reason: string): void {
    this.metrics.disconnects.inc({ reason });
    this.logger.debug({ socketId: socket.id, reason }, "viewer left");
  }

  /** The slug's feed on this node drops what it keeps for the socket. */
  forget(socket: Socket, slug: Slug): void {
    this.feeds.get(slug)?.forget(socket);
  }

  /** The socket stops following the slug's channel. */
  leave(socket: Socket, slug: Slug): void {
    this.forget(socket, slug);
    void socket.leave(linesRoom(slug));
    void socket.leave(batchesRoom(slug));
    void socket.leave(channelName(slug));
  }
}

/**
 * Socket.IO calls a listener with the socket as `this`, so one function
 * serves every connection, where a closure per connection would cost each
 * idle viewer function objects of its own.
 */
function sharedListeners(gateway: ViewerGateway) {
  return {
    subscribe(this: Socket, ...args: unknown[]): void {
      const [raw, ack] = requestAndAck(args);
      gateway.onSubscribe(this, raw, ack);
    },
    unsubscribe(this: Socket, ...args: unknown[]): void {
      const [raw, reply] = requestAndAck(args);
      const slug = parseChannelName(raw);
      if (slug !== undefined) gateway.leave(this, slug);
      if (typeof reply !== "function") return;
      const answer: UnsubscribeAck =
        slug === undefined
          ? {
              ok: false,
              error: new RelayError(
                RelayErrorCode.BAD_CHANNEL,
                "unsubscribe takes logs:<slug>",
              ).toJSON(),
            }
          : { ok: true, channel: channelName(slug) };
      (reply as (answer: UnsubscribeAck) => void)(answer);
    },
    disconnecting(this: Socket): void {
      for (const room of this.rooms) {
        const slug = parseChannelName(room);
        if (slug !== undefined) gateway.forget(this, slug);
      }
    },
    disconnect(this: Socket, reason: string): void {
      gateway.left(this, reason);
    },
  };
}

/**
 * An event's request and acknowledgement. Asked with an acknowledgement
 * and nothing else, Socket.IO hands the callback over as the first
 * argument.
 */
function requestAndAck(args: unknown[]): [unknown, unknown] {
  const [first, second] = args;
  return typeof first === "function" && second === undefined
    ? [undefined, first]
    : [first, second];
}
