/**
 * One relay node: Socket.IO on uWebSockets.js, room membership shared with
 * the other nodes through the sharded Redis adapter, and the channels this
 * node owns forwarded from Valkey to their rooms.
 *
 * Socket.IO's uWebSockets.js integration patches the adapter for the whole
 * process, so a process runs exactly one node.
 */
import { createShardedAdapter } from "@socket.io/redis-adapter";
import type { Redis } from "ioredis";
import { Server, type Socket } from "socket.io";
import uWS from "uWebSockets.js";
import {
  CHANNEL_PREFIX,
  parseChannelName,
  type Slug,
} from "../shared/channel-name.ts";
import type { Logger } from "../shared/logger.ts";
import { createValkeyClient } from "../shared/valkey-connection.ts";
import { parseLogMessage } from "../shared/wire.ts";
import { ChannelOwner } from "./channel-owner.ts";
import type { RelayOptions } from "./config.ts";
import { RelayError, RelayErrorCode } from "./errors.ts";
import { mountHttpRoutes } from "./http-routes.ts";
import { RelayMetrics, type ValkeyConnectionName } from "./relay-metrics.ts";
import { parseSubscribeRequest, refuse } from "./subscribe-handler.ts";
import { waitForValkey } from "./valkey-readiness.ts";

export class RelayNode {
  readonly metrics: RelayMetrics;
  private readonly app: uWS.TemplatedApp;
  private readonly io: Server;
  private readonly owner: ChannelOwner;
  private readonly clients: Record<ValkeyConnectionName, Redis>;
  private listenSocket: uWS.us_listen_socket | undefined;
  private draining = false;
  private closed = false;
  port = 0;

  private constructor(
    private readonly options: RelayOptions,
    private readonly logger: Logger,
  ) {
    const valkey = { url: options.valkey.url, caFile: options.valkey.caFile };
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
      }),
    };

    this.metrics = new RelayMetrics({
      clientsByTransport: () => this.clientsByTransport(),
      roomsWithViewers: () => this.roomsWithViewers().length,
      channelsOwned: () => this.owner.ownedSlugs().length,
    });
    this.watchValkey();

    this.owner = new ChannelOwner(
      this.clients.commands,
      this.clients.subscriber,
      options,
      logger,
      (slug, payload) => this.forward(slug, payload),
    );
    this.owner.on("acquired", () => {
      this.metrics.ownershipEvents.inc({ event: "acquired", reason: "lease" });
    });
    this.owner.on("lost", (_slug, reason) => {
      this.metrics.ownershipEvents.inc({ event: "lost", reason });
    });

    this.app = uWS.App();
    this.io = new Server({
      adapter: createShardedAdapter(
        this.clients.commands,
        this.clients.adapter,
        { subscriptionMode: "dynamic" },
      ),
      cors: { origin: "*" },
      serveClient: false,
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

    await this.owner.releaseAll().catch(() => {});
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
        this.port = uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
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
    socket.on("subscribe", (raw: unknown) => {
      try {
        this.subscribe(socket, raw);
      } catch (err) {
        if (!(err instanceof RelayError)) throw err;
        this.metrics.subscribeRefusals.inc({ reason: err.code });
        this.logger.info({ code: err.code }, "subscribe refused");
        refuse(socket, err);
      }
    });

    socket.on("unsubscribe", (raw: unknown) => {
      const slug = parseChannelName(raw);
      if (slug !== undefined) void socket.leave(`${CHANNEL_PREFIX}${slug}`);
    });
  }

  private subscribe(socket: Socket, raw: unknown): void {
    if (this.draining) {
      throw new RelayError(RelayErrorCode.UNAVAILABLE, "node is shutting down");
    }
    const { slug } = parseSubscribeRequest(raw);
    const room = `${CHANNEL_PREFIX}${slug}`;

    if (!socket.rooms.has(room)) {
      const followed = [...socket.rooms].filter((r) => r.startsWith(CHANNEL_PREFIX));
      if (followed.length >= this.options.maxChannelsPerSocket) {
        throw new RelayError(
          RelayErrorCode.TOO_MANY_CHANNELS,
          "this connection follows as many channels as allowed",
        );
      }
      // The adapter's join is synchronous for the local room state.
      void socket.join(room);
    }
    socket.emit("message", `Joined ${room}`);
  }

  /** A payload read by this node as the channel's owner. */
  private forward(slug: Slug, payload: string): void {
    this.metrics.linesReceived.inc();

    const message = parseLogMessage(payload);
    if (message) {
      this.metrics.deliveryLatency.observe(
        Math.max(0, Date.now() - message.ts) / 1000,
      );
    } else {
      this.metrics.malformedPayloads.inc();
    }

    const room = `${CHANNEL_PREFIX}${slug}`;
    this.countDelivery(room, 1);
    this.io.to(room).emit("message", payload);
    this.metrics.framesEmitted.inc({ event: "message" });
  }

  private countDelivery(room: string, lines: number): void {
    const viewers = this.io.of("/").adapter.rooms.get(room)?.size ?? 0;
    if (viewers > 0) this.metrics.linesDelivered.inc(lines * viewers);
  }

  /**
   * Tells the owner logic when this node gains its first or loses its last
   * viewer of a channel, and counts lines the adapter delivers here on
   * another node's behalf.
   */
  private watchRooms(): void {
    const adapter = this.io.of("/").adapter;

    adapter.on("create-room", (room: string) => {
      const slug = parseChannelName(room);
      if (slug !== undefined) this.owner.viewerJoined(slug);
    });
    adapter.on("delete-room", (room: string) => {
      const slug = parseChannelName(room);
      if (slug !== undefined) this.owner.viewerLeft(slug);
    });

    const clusterAdapter = adapter as unknown as {
      onMessage(message: ClusterBroadcast, offset?: string): unknown;
    };
    const onMessage = clusterAdapter.onMessage.bind(clusterAdapter);
    clusterAdapter.onMessage = (message, offset) => {
      const room = message.type === BROADCAST ? message.data?.opts?.rooms?.[0] : undefined;
      if (typeof room === "string" && room.startsWith(CHANNEL_PREFIX)) {
        this.countDelivery(room, 1);
      }
      return onMessage(message, offset);
    };
  }

  private roomsWithViewers(): string[] {
    return [...this.io.of("/").adapter.rooms.keys()].filter((room) =>
      room.startsWith(CHANNEL_PREFIX),
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
      [ValkeyConnectionName, Redis]
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

interface ClusterBroadcast {
  type: number;
  data?: { opts?: { rooms?: unknown[] } };
}

/** uWebSockets.js's LIBUS_LISTEN_EXCLUSIVE_PORT (its typings' enum is type-only). */
const EXCLUSIVE_PORT = 1 as uWS.ListenOptions;
