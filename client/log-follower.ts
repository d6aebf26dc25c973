/**
 * The documented way to consume build logs: follows one channel through a
 * relay and hands each line over once, in order, across reconnects.
 *
 * It speaks the structured form of the protocol (shared/viewer-protocol.ts):
 * on every (re)connect it subscribes with `since` set to the last seq it has
 * seen, so the relay sends exactly what was missed, and it drops anything it
 * has already handed over, whatever the network does.
 *
 * ```ts
 * const follower = new LogFollower({ url: "http://relay:9002", slug: "my-site" });
 * follower.on("line", (message) => console.log(message.log));
 * follower.on("status", (status) => follower.close());
 * ```
 */
import { EventEmitter } from "node:events";
import {
  io,
  type ManagerOptions,
  type Socket,
  type SocketOptions,
} from "socket.io-client";
import { CHANNEL_PREFIX } from "../shared/channel-name.ts";
import {
  LOGS_EVENT,
  SUBSCRIBE_EVENT,
  type GapNotice,
  type LogsEvent,
  type ProtocolError,
  type SubscribeAck,
  type SubscribeRequest,
} from "../shared/viewer-protocol.ts";
import type {
  BuildId,
  LineMessage,
  Seq,
  StatusMessage,
} from "../shared/wire.ts";

export interface LogFollowerOptions {
  /** The relay (or load balancer) URL, such as `http://127.0.0.1:9002`. */
  url: string;
  slug: string;
  /** Start after this seq of `buildId` (or of the latest build). */
  since?: Seq;
  buildId?: string;
  token?: string;
  /** How long a subscribe may wait for its acknowledgement. Default 10000. */
  subscribeTimeoutMs?: number;
  /** Passed to socket.io-client; its defaults are what the dashboard uses. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

export interface LogFollowerEvents {
  /** The relay accepted the subscription (after every reconnect too). */
  subscribed: [ack: Extract<SubscribeAck, { ok: true }>];
  /** Lines of a build other than the one followed so far begin. */
  build: [buildId: BuildId];
  line: [message: LineMessage];
  /** Lines that will never arrive (history capped, or dropped at the builder). */
  gap: [notice: GapNotice];
  status: [message: StatusMessage];
  /** A refusal from the relay; `code` is stable. */
  refused: [error: ProtocolError];
  error: [error: Error];
}

export class LogFollower extends EventEmitter<LogFollowerEvents> {
  readonly socket: Socket;
  readonly channel: string;
  private currentBuild: BuildId | undefined;
  private seq: Seq;
  private closed = false;

  constructor(private readonly options: LogFollowerOptions) {
    super();
    this.channel = `${CHANNEL_PREFIX}${options.slug}`;
    this.currentBuild = options.buildId as BuildId | undefined;
    this.seq = options.since ?? 0;

    this.socket = io(options.url, { forceNew: true, ...options.socketOptions });
    this.socket.on("connect", () => this.subscribe());
    this.socket.on(LOGS_EVENT, (event: LogsEvent) => this.onLogs(event));
    this.socket.on("connect_error", (err) => {
      // socket.io-client retries by itself; this is for the caller's logs.
      if (this.listenerCount("error") > 0) this.emit("error", err);
    });
  }

  /** The build being followed, once known. */
  get buildId(): BuildId | undefined {
    return this.currentBuild;
  }

  /** The last seq handed over for the current build. */
  get lastSeq(): Seq {
    return this.seq;
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }

  private subscribe(): void {
    const request: SubscribeRequest = {
      channel: this.channel,
      since: this.seq,
      buildId: this.currentBuild,
      token: this.options.token,
    };

    this.socket
      .timeout(this.options.subscribeTimeoutMs ?? 10_000)
      .emit(
        SUBSCRIBE_EVENT,
        request,
        (err: Error | null, ack: SubscribeAck) => {
          if (this.closed) return;
          if (err) {
            // No answer in time: the connection is probably gone, and the
            // next "connect" subscribes again. If it is not, retry now.
            if (this.socket.connected) this.subscribe();
            return;
          }
          if (!ack.ok) {
            this.emit("refused", ack.error);
            return;
          }
          this.emit("subscribed", ack);
        },
      );
  }

  private onLogs(event: LogsEvent): void {
    if (event.channel !== this.channel) return;

    for (const message of event.messages) {
      // A listener may close the follower part way through a batch.
      if (this.closed) return;
      if (message.buildId !== this.currentBuild) {
        this.currentBuild = message.buildId;
        this.seq = 0;
        this.emit("build", message.buildId);
      }

      if (message.type === "gap") {
        if (message.toSeq <= this.seq) continue;
        this.seq = message.toSeq;
        this.emit("gap", message);
        continue;
      }
      if (message.seq <= this.seq) continue;

      this.seq = message.seq;
      if (message.type === "status") this.emit("status", message);
      else this.emit("line", message);
    }
  }
}
