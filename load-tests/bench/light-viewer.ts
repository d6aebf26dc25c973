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
 *
 * A viewer whose connection ends after it subscribed (a relay closes the
 * transport of a viewer that cannot keep up) reconnects as the real
 * clients do: a structured viewer resumes with `since` and `buildId` from
 * its tracker, so it should lose nothing; a string-form viewer simply
 * subscribes again, and whatever was sent while it was away is lost to
 * it, which its tracker counts.
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
import { LogFrameScanner } from "./log-frame-scanner.ts";

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
  /** Connections that ended after subscribing and were opened again. */
  reconnects: number;
}

export interface LightViewerHooks {
  /** Subscribed for the first time. */
  ready(viewer: LightViewer): void;
  /** Could not subscribe at first, or gave up reconnecting. */
  failed(viewer: LightViewer, reason: string): void;
}

const LOGS_PREFIX = '42["logs",';
const MESSAGE_PREFIX = '42["message","';
const STATUS_PREFIX = '42["status",';
const MAX_RECONNECTS = 20;
/** socket.io-client's default first reconnection delay, with jitter. */
const RECONNECT_DELAY_MS = 1000;

export class LightViewer {
  readonly tracker = new DeliveryTracker();
  private readonly scanner = new LogFrameScanner();
  private readonly seen = new SeenMessages();
  readonly startedAtMs = Date.now();
  readyAtMs: number | undefined;
  private socket: WebSocket | undefined;
  private session: SocketIoSession | undefined;
  private reconnects = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly options: LightViewerOptions,
    private readonly latency: LatencyHistogram,
    private readonly counters: FleetCounters,
    private readonly hooks: LightViewerHooks,
  ) {
    this.open();
  }

  get ready(): boolean {
    return this.readyAtMs !== undefined;
  }

  /**
   * True when lines missing at the end can never come: a string-form
   * viewer that reconnected missed whatever was sent while it was away.
   */
  get missedForGood(): boolean {
    return this.options.form === "string" && this.reconnects > 0;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.terminate();
  }

  private open(): void {
    const socket = new WebSocket(websocketUrl(this.options.url), {
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });
    const { token } = this.options;
    const session = new SocketIoSession(
      {
        send: (frame) => socket.send(frame),
        connected: () => this.subscribe(session),
        event: (event, args) => this.onEvent(event, args),
        closed: (reason) => this.onClosed(socket, reason),
      },
      token === undefined ? {} : { auth: { token } },
    );
    this.socket = socket;
    this.session = session;

    socket.on("message", (data: Buffer) => this.onFrame(session, data));
    socket.on("error", (err) => session.close(err.message));
    socket.on("close", () => session.close("transport closed"));
  }

  private subscribe(session: SocketIoSession): void {
    const { channel, form, token } = this.options;
    if (form === "string") {
      session.emit("subscribe", channel);
      return;
    }

    const resume = this.tracker.resumePoint();
    const request = {
      channel,
      since: resume?.lastSeq ?? 0,
      buildId: resume?.buildId,
      token,
    };
    session.emitWithAck("subscribe", [request], ([ack]) => {
      const answer = ack as { ok?: boolean; error?: { code?: string } };
      if (answer?.ok === true) this.markReady();
      else session.close(`subscribe refused: ${answer?.error?.code}`);
    });
  }

  private onClosed(socket: WebSocket, reason: string): void {
    socket.terminate();
    if (this.closed) return;

    if (!this.ready || this.reconnects >= MAX_RECONNECTS) {
      this.closed = true;
      this.hooks.failed(this, reason);
      return;
    }
    this.reconnects += 1;
    this.counters.reconnects += 1;
    const delayMs = RECONNECT_DELAY_MS * (0.5 + Math.random());
    this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  private onFrame(session: SocketIoSession, data: Buffer): void {
    // Log frames are read as latin1 (see log-frame-scanner.ts); the rest
    // are small and go to the session as UTF-8.
    const head = data.toString("latin1", 0, MESSAGE_PREFIX.length + 1);
    if (head.startsWith(LOGS_PREFIX)) {
      this.countFrame(data);
      this.readLogs(session, data, LOGS_PREFIX.length, false);
    } else if (head.startsWith(MESSAGE_PREFIX)) {
      this.countFrame(data);
      if (head.endsWith("{")) {
        this.readLogs(session, data, MESSAGE_PREFIX.length, true);
      } else {
        session.receive(data.toString());
      }
    } else if (head.startsWith(STATUS_PREFIX)) {
      // The status also comes inside the `logs` batch; only the frame counts.
      this.countFrame(data);
    } else {
      session.receive(data.toString());
    }
  }

  private countFrame(data: Buffer): void {
    this.counters.frames += 1;
    this.counters.bytes += data.length;
    this.counters.lastFrameMs = Date.now();
  }

  private readLogs(
    session: SocketIoSession,
    data: Buffer,
    start: number,
    escaped: boolean,
  ): void {
    const now = Date.now();
    const text = data.toString("latin1");
    const seen = this.seen;
    seen.count = 0;
    const known = this.scanner.scan(text, start, escaped, seen.add);

    if (known) {
      for (let i = 0; i < seen.count; i++) {
        this.tracker.seq(seen.ids[i]!, seen.seqs[i]!, seen.statuses[i]);
        this.latency.record(now - seen.stamps[i]!);
      }
      return;
    }
    this.counters.parsedFrames += 1;
    session.receive(data.toString());
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
      this.session?.close(`refused: ${args}`);
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
}

/**
 * What the scanner read of one frame, held until the whole frame is known
 * to be readable. The arrays are kept from frame to frame: a viewer reads
 * millions of messages, and a tuple for each one was garbage to collect.
 */
class SeenMessages {
  count = 0;
  readonly ids: string[] = [];
  readonly seqs: number[] = [];
  readonly stamps: number[] = [];
  readonly statuses: boolean[] = [];

  readonly add = (
    buildId: string,
    seq: number,
    ts: number,
    isStatus: boolean,
  ): void => {
    const i = this.count++;
    this.ids[i] = buildId;
    this.seqs[i] = seq;
    this.stamps[i] = ts;
    this.statuses[i] = isStatus;
  };
}
