/**
 * One relay node: Socket.IO on uWebSockets.js, room membership shared with
 * the other nodes through the sharded Redis adapter, and the channels this
 * node owns forwarded from Valkey to their rooms.
 *
 * Socket.IO's uWebSockets.js integration patches the adapter for the whole
 * process, so a process runs exactly one node.
 */
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { Server, type ServerOptions, type Socket } from "socket.io";
import uWS from "uWebSockets.js";
import {
  channelName,
  parseChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import {
  createValkeyClient,
  type ValkeyClient,
} from "../shared/valkey-connection.ts";
import {
  MESSAGE_EVENT,
  SUBSCRIBE_EVENT,
  UNSUBSCRIBE_EVENT,
  type SubscribeAck,
} from "../shared/viewer-protocol.ts";
import { ChannelFeed, batchesRoom, linesRoom } from "./channel-feed.ts";
import { ChannelOwner } from "./channel-owner.ts";
import type { RelayOptions } from "./config.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";
import { HistoryReader, type HistoryEnd } from "./history-reader.ts";
import { mountHttpRoutes } from "./http-routes.ts";
import { LineBatcher, type RelayBatch } from "./line-batcher.ts";
import { RelayMetrics, type ValkeyConnectionName } from "./relay-metrics.ts";
import { SlowViewerGuard } from "./slow-viewer-guard.ts";
import {
  parseSubscribeRequest,
  refuse,
  type SubscribeRequest,
} from "./subscribe-handler.ts";
import { waitForValkey } from "./valkey-readiness.ts";

export class RelayNode {
  readonly metrics: RelayMetrics;
  private readonly app: uWS.TemplatedApp;
  private readonly io: Server;
  private readonly owner: ChannelOwner;
  private readonly clients: Record<ValkeyConnectionName, ValkeyClient>;
  private readonly history: HistoryReader;
  private readonly batcher: LineBatcher;
  private readonly feeds = new Map<Slug, ChannelFeed>();
  /** Per owned slug: the last message this node broadcast. */
  private readonly forwarded = new Map<Slug, HistoryEnd>();
  /** Per owned slug: the history end seen at the previous check. */
  private readonly tails = new Map<Slug, HistoryEnd>();
  private tailTimer: NodeJS.Timeout | undefined;
  private readonly slowViewers: SlowViewerGuard;
  private listenSocket: uWS.us_listen_socket | undefined;
  private draining = false;
  private closed = false;
  port = 0;

  private constructor(
    private readonly options: RelayOptions,
    private readonly logger: Logger,
  ) {
    const valkey = {
      url: options.valkey.url,
      caFile: options.valkey.caFile,
      cluster: options.valkey.cluster,
    };
    this.clients = {
      commands: createValkeyClient(
        { ...valkey, connectionName: `${options.nodeId}:commands` },
        { enableAutoPipelining: true, enableOfflineQueue: false },
      ),
      subscriber: createValkeyClient(
        { ...valkey, connectionName: `${options.nodeId}:subscriber` },
        { autoResubscribe: false, enableOfflineQueue: false },
      ),
      // The adapter subscribes before the connection is up and relies on
      // ioredis to queue and to resubscribe after a reconnect.
      adapter: createValkeyClient({
        ...valkey,
        connectionName: `${options.nodeId}:adapter`,
        shardedSubscribers: true,
      }),
    };

    this.metrics = new RelayMetrics({
      clientsByTransport: () => this.clientsByTransport(),
      roomsWithViewers: () => this.roomsWithViewers().length,
      channelsOwned: () => this.owner.ownedSlugs().length,
    });
    this.watchValkey();
    this.history = new HistoryReader(this.clients.commands);
    this.batcher = new LineBatcher(options, (batch) =>
      this.broadcastBatch(batch),
    );

    this.owner = new ChannelOwner(
      this.clients.commands,
      this.clients.subscriber,
      options,
      logger,
      (slug, payload) => this.forward(slug, payload),
    );
    this.owner.on("acquired", (slug) => {
      this.metrics.ownershipEvents.inc({ event: "acquired", reason: "lease" });
      this.forwarded.delete(slug);
      this.tails.delete(slug);
      this.sendTail(slug);
    });
    this.owner.on("lost", (slug, reason) => {
      this.metrics.ownershipEvents.inc({ event: "lost", reason });
      this.batcher.flush(slug);
      this.forwarded.delete(slug);
      this.tails.delete(slug);
    });

    this.app = uWS.App();
    this.io = new Server({
      adapter: createShardedAdapter(
        this.clients.commands,
        this.clients.adapter,
        { subscriptionMode: "dynamic" },
      ),
      cors: { origin: options.corsOrigin },
      serveClient: false,
      // uWebSockets.js drops publishes to a socket over this silently; the
      // slow-viewer guard disconnects long before it is reached.
      maxBackpressure: Math.max(
        16 * 1024 * 1024,
        4 * options.slowViewerBufferBytes,
      ),
    } as Partial<ServerOptions>);
    this.slowViewers = new SlowViewerGuard(
      this.io,
      options,
      this.metrics,
      logger,
    );
    this.io.attachApp(this.app);
    mountHttpRoutes(
      this.app,
      {
        nodeId: options.nodeId,
        notReadyReasons: () => this.notReadyReasons(),
      },
      this.metrics.registry,
    );

    this.watchRooms();
    this.io.on("connection", (socket) => this.onConnection(socket));
  }

  /**
   * Connects to Valkey and listens. Fails with a RelayError when Valkey does
   * not answer within `connectTimeoutMs`.
   */
  static async start(
    options: RelayOptions,
    logger: Logger,
    connectTimeoutMs = 10_000,
  ): Promise<RelayNode> {
    const node = new RelayNode(options, logger);
    try {
      await waitForValkey(Object.values(node.clients), connectTimeoutMs);
      await node.listen();
    } catch (err) {
      await node.close();
      throw err;
    }
    node.owner.start();
    node.slowViewers.start();
    node.tailTimer = setInterval(() => {
      node.checkTails().catch((err: unknown) => {
        logger.warn({ err }, "history tail check failed");
      });
    }, options.leaseRenewIntervalMs);
    return node;
  }

  /** Why the node cannot serve right now; empty when it can. */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.draining) reasons.push("draining");
    for (const [name, client] of Object.entries(this.clients)) {
      if (client.status !== "ready") reasons.push(`valkey ${name} not ready`);
    }
    return reasons;
  }

  /**
   * SIGTERM: stop being ready, hand every owned channel over at once, close
   * viewers' connections so their clients reconnect elsewhere, then close.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.info({ owned: this.owner.ownedSlugs().length }, "draining");

    this.batcher.flushAll();
    await this.owner.releaseAll();

    // Closing the transport, not the Socket.IO session, is what makes
    // socket.io-client reconnect ("transport close").
    for (const socket of this.io.of("/").sockets.values()) {
      socket.conn.close();
    }
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;

    clearInterval(this.tailTimer);
    this.slowViewers.stop();
    this.batcher.flushAll();
    await this.owner.releaseAll().catch(() => {});
    for (const feed of this.feeds.values()) feed.close();
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    await this.io.close();
    for (const client of Object.values(this.clients)) {
      client.disconnect();
    }
    this.logger.info("closed");
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onListen = (socket: uWS.us_listen_socket | false): void => {
        if (!socket) {
          reject(
            new RelayError(
              RelayErrorCode.UNAVAILABLE,
              "could not listen on the configured host and port",
            ),
          );
          return;
        }
        this.listenSocket = socket;
        this.port = uWS.us_socket_local_port(
          socket as unknown as uWS.us_socket,
        );
        resolve();
      };

      // uWebSockets.js shares a port with other listeners unless told not
      // to; a second relay on a taken port must fail, not split traffic.
      const { host, port } = this.options;
      if (host === "0.0.0.0" || host === "::") {
        this.app.listen(port, EXCLUSIVE_PORT, onListen);
      } else {
        this.app.listen(host, port, onListen);
      }
    });
  }

  private onConnection(socket: Socket): void {
    socket.on(SUBSCRIBE_EVENT, (raw: unknown, ack?: unknown) => {
      const reply =
        typeof ack === "function"
          ? (ack as (a: SubscribeAck) => void)
          : undefined;
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
    });

    socket.on(UNSUBSCRIBE_EVENT, (raw: unknown) => {
      const slug = parseChannelName(raw);
      if (slug !== undefined) this.leave(socket, slug);
    });

    socket.on("disconnecting", () => {
      for (const room of socket.rooms) {
        const slug = parseChannelName(room);
        if (slug !== undefined) this.feeds.get(slug)?.forget(socket);
      }
    });
  }

  private subscribe(
    socket: Socket,
    request: SubscribeRequest,
    ack: ((answer: SubscribeAck) => void) | undefined,
  ): void {
    if (this.draining) {
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
    const feed = this.feeds.get(slug)!;

    if (request.form === "string") {
      // `Joined` promises the lines that follow it, so it waits until some
      // node forwards the channel.
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
      return;
    }

    feed
      .follow(socket, request, (start) => {
        ack?.({ ok: true, channel, ...start });
      })
      .catch((err: unknown) => {
        this.logger.warn({ err, slug }, "catch-up from history failed");
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

  private leave(socket: Socket, slug: Slug): void {
    this.feeds.get(slug)?.forget(socket);
    void socket.leave(linesRoom(slug));
    void socket.leave(batchesRoom(slug));
    void socket.leave(channelName(slug));
  }

  /** A payload read by this node as the channel's owner. */
  private forward(slug: Slug, payload: string): void {
    this.metrics.linesReceived.inc();
    this.batcher.add(slug, payload);
  }

  /** Sends an owner's batch to every node with viewers, this one included. */
  private broadcastBatch(batch: RelayBatch): void {
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

    // The except() keeps the adapter from delivering the internal event to
    // sockets; every node hands the batch to its feed instead (watchRooms).
    const room = channelName(batch.slug);
    this.io.to(room).except(room).emit(FEED_EVENT, batch);
    this.feeds.get(batch.slug)?.receive(batch);
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
          this.broadcastBatch({ slug, entries: [], tail: end });
        }
      },
      (err: unknown) => {
        this.logger.warn({ err, slug }, "history tail read failed");
      },
    );
  }

  /**
   * Tells the nodes how far history reaches when it is ahead of what this
   * owner forwarded for a whole check interval: lines published before the
   * subscription was in place, or lost by a dropped subscription.
   */
  private async checkTails(): Promise<void> {
    for (const slug of this.owner.ownedSlugs()) {
      const end = await this.history.end(slug).catch(() => undefined);
      if (end === undefined) continue;

      const seen = this.tails.get(slug);
      this.tails.set(slug, end);
      if (!seen || seen.buildId !== end.buildId) continue;

      const forwarded = this.forwarded.get(slug);
      const behind =
        forwarded === undefined ||
        forwarded.buildId !== seen.buildId ||
        forwarded.seq < seen.seq;
      if (behind && this.owner.isOwner(slug)) {
        this.logger.info({ slug, seq: seen.seq }, "forwarding history tail");
        this.broadcastBatch({ slug, entries: [], tail: seen });
      }
    }
  }

  /**
   * Keeps a feed for every channel with local viewers, tells the owner
   * logic when the first viewer comes and the last goes, and routes the
   * owners' batches arriving from other nodes into the feeds.
   */
  private watchRooms(): void {
    const adapter = this.io.of("/").adapter;

    adapter.on("create-room", (room: string) => {
      const slug = parseChannelName(room);
      if (slug === undefined) return;
      this.feeds.set(
        slug,
        new ChannelFeed(slug, this.io, this.history, this.metrics, this.logger),
      );
      this.owner.viewerJoined(slug);
    });
    adapter.on("delete-room", (room: string) => {
      const slug = parseChannelName(room);
      if (slug === undefined) return;
      this.feeds.get(slug)?.close();
      this.feeds.delete(slug);
      this.owner.viewerLeft(slug);
    });

    const clusterAdapter = adapter as unknown as {
      uid: string;
      onMessage(message: ClusterBroadcast, offset?: string): unknown;
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
        return onMessage(message, offset);
      }
      const batch = data[1] as RelayBatch | undefined;
      if (!isRelayBatch(batch)) {
        this.logger.warn("malformed batch from another node");
        return;
      }
      this.feeds.get(batch.slug)?.receive(batch);
    };
  }

  private roomsWithViewers(): string[] {
    return [...this.io.of("/").adapter.rooms.keys()].filter(
      (room) => parseChannelName(room) !== undefined,
    );
  }

  private clientsByTransport(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const socket of this.io.of("/").sockets.values()) {
      const transport = socket.conn.transport.name;
      counts.set(transport, (counts.get(transport) ?? 0) + 1);
    }
    return counts;
  }

  private watchValkey(): void {
    for (const [name, client] of Object.entries(this.clients) as Array<
      [ValkeyConnectionName, ValkeyClient]
    >) {
      let wasReady = false;
      const log = this.logger.child({ connection: name });

      client.on("error", (err: Error) => {
        log.debug({ err }, "valkey connection error");
      });
      client.on("ready", () => {
        this.metrics.valkeyUp.set({ connection: name }, 1);
        if (wasReady) {
          this.metrics.valkeyReconnects.inc({ connection: name });
          log.info("valkey connection restored");
        }
        wasReady = true;
      });
      client.on("close", () => {
        this.metrics.valkeyUp.set({ connection: name }, 0);
        if (wasReady && !this.closed) log.warn("valkey connection lost");
      });
    }
  }
}

/** The cluster adapter's message type for a room broadcast. */
const BROADCAST = 3;

/** Longest wait before `Joined` for a channel nobody forwards yet. */
const FORWARDING_WAIT_MS = 3000;

/** The internal event an owner broadcasts its batches with. */
const FEED_EVENT = "relay:batch";

interface ClusterBroadcast {
  uid?: string;
  nsp?: string;
  type: number;
  data?: { packet?: { data?: unknown } };
}

function isRelayBatch(value: unknown): value is RelayBatch {
  if (typeof value !== "object" || value === null) return false;
  const batch = value as Partial<RelayBatch>;
  return typeof batch.slug === "string" && Array.isArray(batch.entries);
}

/** uWebSockets.js's LIBUS_LISTEN_EXCLUSIVE_PORT (its typings' enum is type-only). */
const EXCLUSIVE_PORT = 1 as uWS.ListenOptions;
