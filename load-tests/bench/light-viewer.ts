/**
 * A benchmark viewer: one raw WebSocket speaking the viewer protocol
 * through load-tests/socketio-framing.ts, checking seq continuity with a
 * DeliveryTracker and recording delivery latency from each line's `ts`.
 *
 * Log frames, which are nearly all of the traffic, are read from the raw
 * bytes by log-frame-scanner.ts; everything else goes through the session
 * as text. Structured viewers subscribe with `{ channel }` and wait for
 * the acknowledgement; string-form viewers subscribe with the channel name
 * and wait for `Joined <channel>`, as the old dashboard does.
 */
import WebSocket from "ws";
import type { ViewerMessage } from "../../shared/viewer-protocol.ts";
import { DeliveryTracker } from "../delivery-tracker.ts";
import {
  SocketIoSession,
  eventArgs,
  websocketUrl,
} from "../socketio-framing.ts";
import type { LatencyHistogram } from "./latency-histogram.ts";
import { scanLogFrame, startsWith } from "./log-frame-scanner.ts";

export type ViewerForm = "string" | "structured";

export interface LightViewerOptions {
  /** The server's base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** `logs:<slug>`. */
  channel: string;
  form: ViewerForm;
  /** Sent with the connect and the subscribe, as a real viewer would. */
  token?: string;
}

/** Counters every viewer of a process adds to. */
export interface FleetCounters {
  /** WebSocket messages carrying log content (`logs`, `message`, `status`). */
  frames: number;
  bytes: number;
  /** Frames the scanner could not read, parsed as JSON instead. */
  parsedFrames: number;
  /** When the last log frame arrived, ms since the epoch. */
  lastFrameMs: number;
}

export interface LightViewerHooks {
  ready(viewer: LightViewer): void;
  failed(viewer: LightViewer, reason: string): void;
}

const LOGS_PREFIX = Buffer.from('42["logs",');
const MESSAGE_PREFIX = Buffer.from('42["message","');
const STATUS_PREFIX = Buffer.from('42["status",');
const PAYLOAD_START = Buffer.from("{");

export class LightViewer {
  readonly tracker = new DeliveryTracker();
  readonly startedAtMs = Date.now();
  readyAtMs: number | undefined;
  private readonly socket: WebSocket;
  private readonly session: SocketIoSession;
  private done = false;

  constructor(
    readonly options: LightViewerOptions,
    private readonly latency: LatencyHistogram,
    private readonly counters: FleetCounters,
    private readonly hooks: LightViewerHooks,
  ) {
    this.socket = new WebSocket(websocketUrl(options.url), {
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });

    this.session = new SocketIoSession(
      {
        send: (frame) => this.socket.send(frame),
        connected: () => this.subscribe(),
        event: (event, args) => this.onEvent(event, args),
        closed: (reason) => this.fail(reason),
      },
      options.token === undefined ? {} : { auth: { token: options.token } },
    );

    this.socket.on("message", (data: Buffer) => this.onFrame(data));
    this.socket.on("error", (err) => this.fail(err.message));
    this.socket.on("close", () => this.fail("closed"));
  }

  get ready(): boolean {
    return this.readyAtMs !== undefined;
  }

  close(): void {
    this.done = true;
    this.socket.terminate();
  }

  private subscribe(): void {
    const { channel, form, token } = this.options;
    if (form === "string") {
      this.session.emit("subscribe", channel);
      return;
    }

    this.session.emitWithAck(
      "subscribe",
      [{ channel, since: 0, token }],
      ([ack]) => {
        const answer = ack as { ok?: boolean; error?: { code?: string } };
        if (answer?.ok === true) this.markReady();
        else this.fail(`subscribe refused: ${answer?.error?.code}`);
      },
    );
  }

  private onFrame(data: Buffer): void {
    if (startsWith(data, LOGS_PREFIX)) {
      this.countFrame(data);
      this.readLogs(data, LOGS_PREFIX.length, false);
    } else if (startsWith(data, MESSAGE_PREFIX)) {
      this.countFrame(data);
      if (data[MESSAGE_PREFIX.length] === PAYLOAD_START[0]) {
        this.readLogs(data, MESSAGE_PREFIX.length, true);
      } else {
        this.session.receive(data.toString());
      }
    } else if (startsWith(data, STATUS_PREFIX)) {
      // The status also comes inside the `logs` batch; only the frame counts.
      this.countFrame(data);
    } else {
      this.session.receive(data.toString());
    }
  }

  private countFrame(data: Buffer): void {
    this.counters.frames += 1;
    this.counters.bytes += data.length;
    this.counters.lastFrameMs = Date.now();
  }

  private readLogs(data: Buffer, start: number, escaped: boolean): void {
    const now = Date.now();
    const seen: Array<[string, number, number, boolean]> = [];
    const known = scanLogFrame(data, start, escaped, (id, seq, ts, status) => {
      seen.push([id, seq, ts, status]);
    });

    if (known) {
      for (const [id, seq, ts, status] of seen) {
        this.tracker.seq(id, seq, status);
        this.latency.record(now - ts);
      }
      return;
    }
    this.counters.parsedFrames += 1;
    this.session.receive(data.toString());
  }

  /** Events that reach the session: joins, refusals, and unscannable logs. */
  private onEvent(event: string, args: string): void {
    if (event === "message") {
      const [payload] = eventArgs(args) as [string];
      if (payload.startsWith(`Joined ${this.options.channel}`)) {
        this.markReady();
        return;
      }
      this.readMessages([JSON.parse(payload) as ViewerMessage]);
    } else if (event === "logs") {
      const [batch] = eventArgs(args) as [{ messages: ViewerMessage[] }];
      this.readMessages(batch.messages);
    } else if (event === "error") {
      this.fail(`refused: ${args}`);
    }
  }

  private readMessages(messages: readonly ViewerMessage[]): void {
    const now = Date.now();
    for (const message of messages) {
      if (message.type === "gap") {
        this.tracker.gap(message.buildId, message.toSeq);
        continue;
      }
      this.tracker.seq(message.buildId, message.seq, message.type === "status");
      this.latency.record(now - message.ts);
    }
  }

  private markReady(): void {
    if (this.readyAtMs !== undefined) return;
    this.readyAtMs = Date.now();
    this.hooks.ready(this);
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.socket.terminate();
    this.hooks.failed(this, reason);
  }
}
