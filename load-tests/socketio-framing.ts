/**
 * Engine.IO v4 and Socket.IO v5 framing over one WebSocket, for the load
 * clients that cannot run socket.io-client: the k6 scenarios and the
 * benchmark's light viewers. It imports nothing and touches no runtime
 * API, so the same file compiles for Node and for k6.
 *
 * It covers what a log viewer needs and no more: the websocket transport
 * from the first request (no long-polling, no upgrade), the main
 * namespace, text frames. One WebSocket message carries one Engine.IO
 * packet:
 *
 * | frame | meaning |
 * | --- | --- |
 * | `0{"sid",...}` | open, from the server: ping interval and timeout |
 * | `2` / `3` | ping from the server / the client's pong |
 * | `40` or `40{auth}` | connect to the main namespace, from the client |
 * | `40{"sid"}` | the server accepted the connect |
 * | `44{"message"}` | the server refused it |
 * | `42["event",...]` | an event |
 * | `42<id>["event",...]` | an event whose sender wants an acknowledgement |
 * | `43<id>[...]` | the acknowledgement of event `<id>` |
 * | `41` / `1` | disconnect from the namespace / close the transport |
 *
 * A {@link SocketIoSession} runs the handshake, answers pings and matches
 * acknowledgements; the caller owns the WebSocket and every timer.
 */

/** The path and query that open a Socket.IO connection as a WebSocket. */
export const WEBSOCKET_PATH = "/socket.io/?EIO=4&transport=websocket";

/** The client's answer to a ping. */
export const PONG_FRAME = "3";

/** What the server's open packet says. */
export interface EngineOpen {
  sid: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxPayloadBytes: number;
}

export type Frame =
  | { kind: "open"; open: EngineOpen }
  | { kind: "ping" }
  | { kind: "pong" }
  | { kind: "close" }
  | { kind: "noop" }
  | { kind: "connect"; sid: string }
  | { kind: "connect-error"; message: string }
  | { kind: "disconnect" }
  /** `args` is the JSON array text `["event",...]`; see {@link eventArgs}. */
  | { kind: "event"; event: string; ackId: number | undefined; args: string }
  /** `args` is the JSON array text of the acknowledgement's arguments. */
  | { kind: "ack"; ackId: number; args: string }
  | { kind: "unknown"; frame: string };

/**
 * The WebSocket URL of a server's Socket.IO endpoint: `http://h:p` becomes
 * `ws://h:p/socket.io/?EIO=4&transport=websocket`, `https` becomes `wss`.
 */
export function websocketUrl(baseUrl: string): string {
  const origin = baseUrl
    .replace(/^http:/, "ws:")
    .replace(/^https:/, "wss:")
    .replace(/\/+$/, "");
  return `${origin}${WEBSOCKET_PATH}`;
}

/** `40`, or `40{...}` carrying the auth payload of the connect. */
export function encodeConnect(auth?: Record<string, unknown>): string {
  return auth === undefined ? "40" : `40${JSON.stringify(auth)}`;
}

/** `42["event",...args]`, or `42<ackId>[...]` when an answer is wanted. */
export function encodeEvent(
  event: string,
  args: readonly unknown[],
  ackId?: number,
): string {
  return `42${ackId ?? ""}${JSON.stringify([event, ...args])}`;
}

/** `43<ackId>[...args]`: the answer to an event that asked for one. */
export function encodeAck(ackId: number, args: readonly unknown[]): string {
  return `43${ackId}${JSON.stringify(args)}`;
}

/** Reads one WebSocket text message. Never throws. */
export function decodeFrame(frame: string): Frame {
  switch (frame[0]) {
    case "0":
      return decodeOpen(frame);
    case "1":
      return { kind: "close" };
    case "2":
      return { kind: "ping" };
    case "3":
      return { kind: "pong" };
    case "4":
      return decodeSocketPacket(frame);
    case "6":
      return { kind: "noop" };
    default:
      return { kind: "unknown", frame };
  }
}

/** The arguments of an event, after its name. */
export function eventArgs(args: string): unknown[] {
  const parsed = JSON.parse(args) as unknown[];
  return parsed.slice(1);
}

/** The arguments of an acknowledgement. */
export function ackArgs(args: string): unknown[] {
  return JSON.parse(args) as unknown[];
}

function decodeOpen(frame: string): Frame {
  const open = parseObject(frame.slice(1));
  if (open === undefined || typeof open.sid !== "string") {
    return { kind: "unknown", frame };
  }
  return {
    kind: "open",
    open: {
      sid: open.sid,
      pingIntervalMs: numberOr(open.pingInterval, 25_000),
      pingTimeoutMs: numberOr(open.pingTimeout, 20_000),
      maxPayloadBytes: numberOr(open.maxPayload, 1_000_000),
    },
  };
}

function decodeSocketPacket(frame: string): Frame {
  const type = frame[1];
  let at = 2;

  // Only the main namespace is spoken; another one's packets are unknown.
  if (frame[at] === "/") return { kind: "unknown", frame };

  switch (type) {
    case "0": {
      const body = parseObject(frame.slice(at));
      return typeof body?.sid === "string"
        ? { kind: "connect", sid: body.sid }
        : { kind: "unknown", frame };
    }
    case "1":
      return { kind: "disconnect" };
    case "4": {
      const body = parseObject(frame.slice(at));
      const message = body?.message;
      return {
        kind: "connect-error",
        message: typeof message === "string" ? message : frame.slice(at),
      };
    }
    case "2":
    case "3": {
      const start = at;
      while (at < frame.length && frame[at]! >= "0" && frame[at]! <= "9") {
        at += 1;
      }
      const ackId = at > start ? Number(frame.slice(start, at)) : undefined;
      const args = frame.slice(at);
      if (type === "3") {
        return ackId === undefined
          ? { kind: "unknown", frame }
          : { kind: "ack", ackId, args };
      }
      const event = eventName(args);
      return event === undefined
        ? { kind: "unknown", frame }
        : { kind: "event", event, ackId, args };
    }
    default:
      return { kind: "unknown", frame };
  }
}

/**
 * The first element of `["event",...]` without parsing the rest, which
 * for a batch of log lines is most of the frame.
 */
function eventName(args: string): string | undefined {
  if (!args.startsWith('["')) return undefined;
  const end = args.indexOf('"', 2);
  if (end < 0) return undefined;

  const name = args.slice(2, end);
  // An escaped quote inside the name: rare enough to parse the whole.
  if (name.includes("\\")) {
    const parsed = JSON.parse(args) as unknown[];
    return typeof parsed[0] === "string" ? parsed[0] : undefined;
  }
  return name;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (text === "") return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

export type SessionState = "opening" | "connecting" | "connected" | "closed";

export interface SessionHooks {
  /** Sends one text frame on the WebSocket. */
  send(frame: string): void;
  /** The namespace connect was accepted; events may be emitted now. */
  connected?(sid: string): void;
  /**
   * An event from the server. `args` is the JSON array text, so a caller
   * that only counts can skip parsing it; {@link eventArgs} parses it.
   */
  event?(event: string, args: string, ackId: number | undefined): void;
  /** The server refused the connect, disconnected, or closed. */
  closed?(reason: string): void;
}

export interface SessionOptions {
  /** Sent with the namespace connect, as socket.io-client's `auth`. */
  auth?: Record<string, unknown>;
}

/**
 * One Socket.IO client connection over a WebSocket the caller opened.
 * Feed it every text frame with {@link receive}; it answers pings,
 * connects to the main namespace once the transport is open, and matches
 * acknowledgements. Emitting before `connected` throws, as that is a bug
 * in the caller.
 */
export class SocketIoSession {
  private current: SessionState = "opening";
  private nextAckId = 0;
  private readonly acks = new Map<number, (args: unknown[]) => void>();
  private engine: EngineOpen | undefined;
  private socketId: string | undefined;

  constructor(
    private readonly hooks: SessionHooks,
    private readonly options: SessionOptions = {},
  ) {}

  get state(): SessionState {
    return this.current;
  }

  /** The open packet's settings, once received. */
  get engineOpen(): EngineOpen | undefined {
    return this.engine;
  }

  /** The namespace socket id, once connected. */
  get id(): string | undefined {
    return this.socketId;
  }

  /** Acknowledgements asked for and not yet received. */
  get pendingAcks(): number {
    return this.acks.size;
  }

  /** Handles one frame from the server and returns what it was. */
  receive(text: string): Frame {
    const frame = decodeFrame(text);

    switch (frame.kind) {
      case "open":
        this.engine = frame.open;
        this.current = "connecting";
        this.hooks.send(encodeConnect(this.options.auth));
        break;
      case "ping":
        this.hooks.send(PONG_FRAME);
        break;
      case "connect":
        this.socketId = frame.sid;
        this.current = "connected";
        this.hooks.connected?.(frame.sid);
        break;
      case "connect-error":
        this.close(`connect refused: ${frame.message}`);
        break;
      case "disconnect":
        this.close("disconnected by the server");
        break;
      case "close":
        this.close("transport closed by the server");
        break;
      case "event":
        this.hooks.event?.(frame.event, frame.args, frame.ackId);
        break;
      case "ack": {
        const callback = this.acks.get(frame.ackId);
        this.acks.delete(frame.ackId);
        callback?.(ackArgs(frame.args));
        break;
      }
      default:
        break;
    }
    return frame;
  }

  /** Emits an event with no acknowledgement. */
  emit(event: string, ...args: unknown[]): void {
    this.assertConnected();
    this.hooks.send(encodeEvent(event, args));
  }

  /**
   * Emits an event and calls `onAck` with the server's answer. Returns the
   * ack id, which {@link cancelAck} takes when the caller gives up.
   */
  emitWithAck(
    event: string,
    args: readonly unknown[],
    onAck: (args: unknown[]) => void,
  ): number {
    this.assertConnected();
    const ackId = this.nextAckId++;
    this.acks.set(ackId, onAck);
    this.hooks.send(encodeEvent(event, args, ackId));
    return ackId;
  }

  /** Forgets an acknowledgement; a late answer is then ignored. */
  cancelAck(ackId: number): void {
    this.acks.delete(ackId);
  }

  /**
   * Marks the session closed after the WebSocket closed (or the server
   * ended it) and forgets pending acknowledgements.
   */
  close(reason: string): void {
    if (this.current === "closed") return;
    this.current = "closed";
    this.acks.clear();
    this.hooks.closed?.(reason);
  }

  private assertConnected(): void {
    if (this.current !== "connected") {
      throw new SessionStateError(this.current);
    }
  }
}

/** Emitting on a session that is not connected. */
export class SessionStateError extends Error {
  readonly code = "LOADTEST_ERR_SESSION_STATE";

  constructor(readonly state: SessionState) {
    super("the session is not connected");
  }
}
