/**
 * One relay node: Socket.IO on uWebSockets.js, room membership shared with
 * the other nodes through the sharded Redis adapter, and the channels this
 * node owns forwarded from Valkey to their rooms.
 *
 * Socket.IO's uWebSockets.js integration patches the adapter for the whole
 * process, so a process runs exactly one node.
 */
import { createShardedAdapter } from "@socket.io/redis-adapter";
import { Server, type ServerOptions } from "socket.io";
import uWS from "uWebSockets.js";
import { parseChannelName, type Slug } from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import {
  createValkeyClient,
  type ValkeyClient,
} from "../shared/valkey-connection.ts";
import { BatchBroadcaster } from "./batch-broadcaster.ts";
import { ChannelFeed, type FeedPacing } from "./channel-feed.ts";
import { ChannelOwner } from "./channel-owner.ts";
import type { RelayOptions } from "./config.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";
import { HistoryReader } from "./history-reader.ts";
import { mountHttpRoutes } from "./http-routes.ts";
import { guardPollingBodies } from "./polling-body-guard.ts";
import { MemoryBudget } from "./recent-lines.ts";
import { RelayMetrics, type ValkeyConnectionName } from "./relay-metrics.ts";
import { SlowViewerGuard } from "./slow-viewer-guard.ts";
import { slimConnection } from "./slim-connection.ts";
import { ReadReceipts } from "./read-receipts.ts";
import { RoomWriter } from "./room-writer.ts";
import { reapStaleConnections } from "./stale-connection-reaper.ts";
import { waitForValkey } from "./valkey-readiness.ts";
import { ViewerBacklog } from "./viewer-backlog.ts";
import { ViewerGateway } from "./viewer-gateway.ts";

export class RelayNode {
  readonly metrics: RelayMetrics;
  private readonly app: uWS.TemplatedApp;
  private readonly io: Server;
  private readonly owner: ChannelOwner;
  private readonly clients: Record<ValkeyConnectionName, ValkeyClient>;
  private readonly history: HistoryReader;
  private readonly broadcaster: BatchBroadcaster;
  private readonly gateway: ViewerGateway;
  private readonly feeds = new Map<Slug, ChannelFeed>();
  private readonly slowViewers: SlowViewerGuard;
  private readonly receipts: ReadReceipts;
  private readonly pacing: FeedPacing;
  private listenSocket: uWS.us_listen_socket | undefined;
  private draining = false;
  private closed = false;
  port = 0;

  private constructor(
    private readonly options: RelayOptions,
    private readonly logger: Logger,
  ) {
    this.app = uWS.App();
    this.pacing = {
      backlog: new ViewerBacklog(options),
      budget: new MemoryBudget(options.catchUpBufferBytes),
      queued: new MemoryBudget(options.feedQueueBytes),
      rooms: new RoomWriter(this.app),
    };
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
      viewersCatchingUp: () => {
        let count = 0;
        for (const feed of this.feeds.values()) count += feed.catchingUp;
        return count;
      },
      catchUpBufferBytes: () => this.pacing.budget.used,
      feedQueueBytes: () => this.pacing.queued.used,
    });
    this.watchValkey();
    this.history = new HistoryReader(this.clients.commands);

    this.owner = new ChannelOwner(
      this.clients.commands,
      this.clients.subscriber,
      options,
      logger,
      (slug, payload) => this.broadcaster.forward(slug, payload),
    );
    this.owner.on("acquired", () => {
      this.metrics.ownershipEvents.inc({ event: "acquired", reason: "lease" });
    });
    this.owner.on("lost", (_slug, reason) => {
      this.metrics.ownershipEvents.inc({ event: "lost", reason });
    });

    // uWebSockets.js drops publishes to a socket over this silently; slow
    // viewers are held back long before it is reached.
    const maxBackpressure = Math.max(
      16 * 1024 * 1024,
      4 * options.slowViewerBufferBytes,
    );
    this.io = new Server({
      adapter: createShardedAdapter(
        this.clients.commands,
        this.clients.adapter,
        { subscriptionMode: "dynamic" },
      ),
      cors: { origin: options.corsOrigin },
      serveClient: false,
      maxBackpressure,
      maxHttpBufferSize: MAX_MESSAGE_BYTES,
      pingInterval: options.pingIntervalMs,
      pingTimeout: options.pingTimeoutMs,
    } as Partial<ServerOptions>);
    this.slowViewers = new SlowViewerGuard(
      this.io,
      this.feeds,
      this.pacing.backlog,
      {
        slowViewerCheckIntervalMs: options.slowViewerCheckIntervalMs,
        hardLimitBytes: maxBackpressure / 2,
      },
      this.metrics,
      logger,
    );
    this.receipts = new ReadReceipts(
      this.pacing.rooms,
      this.feeds,
      Math.min(1000, options.pingTimeoutMs / 4),
    );
    this.broadcaster = new BatchBroadcaster(
      this.io,
      this.owner,
      this.history,
      this.feeds,
      options,
      this.metrics,
      logger,
    );
    this.gateway = new ViewerGateway(
      this.feeds,
      this.owner,
      options,
      this.metrics,
      logger,
      () => this.draining,
    );
    // Registered before Engine.IO's handler, which it yields to.
    guardPollingBodies(this.app, "/socket.io/", MAX_MESSAGE_BYTES, (status) => {
      this.metrics.refusedRequests.inc({ status: String(status) });
    });
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
    this.io.on("connection", (socket) => {
      slimConnection(socket);
      this.pacing.rooms.track(socket);
      this.gateway.accept(socket);
    });
  }

  /**
   * Connects to Valkey and listens. Fails with a RelayError when Valkey does
   * not answer within `valkeyConnectTimeoutMs`.
   */
  static async start(
    options: RelayOptions,
    logger: Logger,
  ): Promise<RelayNode> {
    const node = new RelayNode(options, logger);
    try {
      await waitForValkey(
        Object.values(node.clients),
        options.valkeyConnectTimeoutMs,
      );
      await node.listen();
    } catch (err) {
      await node.close();
      throw err;
    }
    node.owner.start();
    node.slowViewers.start();
    node.receipts.start();
    node.broadcaster.start();
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

    this.broadcaster.stop();
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

    this.slowViewers.stop();
    this.receipts.stop();
    this.broadcaster.stop();
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
              `could not listen on ${this.options.host}:${this.options.port}; is the port taken?`,
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
        new ChannelFeed(
          slug,
          this.io,
          this.history,
          this.pacing,
          this.metrics,
          this.logger,
        ),
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

    this.broadcaster.tap(adapter);
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

  /**
   * Closes what is left on Valkey's side of this node's connections that
   * died without a word. Runs whenever a connection comes back; it needs
   * the commands connection, whose own return runs it again.
   */
  private reapStale(): void {
    const commands = this.clients.commands;
    if (commands.status !== "ready") return;

    for (const name of Object.keys(this.clients) as ValkeyConnectionName[]) {
      reapStaleConnections(commands, `${this.options.nodeId}:${name}`).then(
        (killed) => {
          if (killed === 0) return;
          this.logger.warn(
            { connection: name, killed },
            "stale valkey connections closed",
          );
        },
        (err: unknown) => {
          this.logger.warn(
            { err, connection: name },
            "stale connection check failed",
          );
        },
      );
    }
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
          this.reapStale();
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

/**
 * Largest message a viewer may send, over WebSocket or in one polling POST.
 * Requests are small; this leaves room for a long access token.
 */
const MAX_MESSAGE_BYTES = 64 * 1024;

/** uWebSockets.js's LIBUS_LISTEN_EXCLUSIVE_PORT (its typings' enum is type-only). */
const EXCLUSIVE_PORT = 1 as uWS.ListenOptions;
