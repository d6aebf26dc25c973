/**
 * The load clients' Engine.IO / Socket.IO framing (load-tests/
 * socketio-framing.ts) against a live relay: both subscribe forms, the
 * acknowledgement, `logs` batches and `message` lines. Pings are tested
 * against a Socket.IO server with a 100 ms ping interval, since a relay
 * pings every 25 s.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import {
  afterAll,
  beforeAll,
  describe,
  expect,
  it,
  onTestFinished,
} from "vitest";
import WebSocket from "ws";
import { DeliveryTracker } from "../load-tests/delivery-tracker.ts";
import {
  SocketIoSession,
  decodeFrame,
  encodeEvent,
  eventArgs,
  websocketUrl,
  PONG_FRAME,
} from "../load-tests/socketio-framing.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import type {
  LogsEvent,
  StatusEvent,
  SubscribeAck,
} from "../shared/viewer-protocol.ts";
import { startRelay } from "./support/relay-process.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";

let valkey: LocalValkey;

beforeAll(async () => {
  valkey = await LocalValkey.start();
});

afterAll(async () => {
  await valkey.stop();
});

interface RawClient {
  session: SocketIoSession;
  socket: WebSocket;
  /** Every event, parsed, in arrival order. */
  events: Array<{ event: string; args: unknown[] }>;
  connected: Promise<void>;
  /** Resolves once `count` events named `event` have arrived. */
  waitForEvents(event: string, count: number): Promise<unknown[][]>;
  closed: Promise<string>;
}

interface RawOptions {
  /** Every frame the session sends, in order. */
  sent?: string[];
  /** Swallow pongs instead of sending them. */
  dropPongs?: boolean;
}

function connectRaw(baseUrl: string, options: RawOptions = {}): RawClient {
  const socket = new WebSocket(websocketUrl(baseUrl));
  onTestFinished(() => {
    socket.terminate();
  });
  socket.on("error", () => {
    // A refused or reset connection shows as `closed`.
  });

  const events: RawClient["events"] = [];
  let waiters: Array<() => void> = [];
  let onConnected: () => void = () => {};
  let onClosed: (reason: string) => void = () => {};
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const closed = new Promise<string>((resolve) => (onClosed = resolve));

  const session = new SocketIoSession({
    send: (frame) => {
      options.sent?.push(frame);
      if (!(options.dropPongs && frame === PONG_FRAME)) socket.send(frame);
    },
    connected: () => onConnected(),
    event: (event, args) => {
      events.push({ event, args: eventArgs(args) });
      for (const wake of waiters) wake();
    },
    closed: (reason) => onClosed(reason),
  });
  socket.on("message", (data: Buffer) => session.receive(data.toString()));
  socket.on("close", () => session.close("transport closed"));

  const waitForEvents = (event: string, count: number) =>
    new Promise<unknown[][]>((resolve) => {
      const check = (): boolean => {
        const matching = events.filter((e) => e.event === event);
        if (matching.length < count) return false;
        resolve(matching.map((e) => e.args));
        return true;
      };
      if (check()) return;
      const wake = (): void => {
        if (check()) waiters = waiters.filter((w) => w !== wake);
      };
      waiters.push(wake);
    });

  return { session, socket, events, connected, waitForEvents, closed };
}

function subscribeStructured(
  client: RawClient,
  channel: string,
): Promise<SubscribeAck> {
  return new Promise((resolve) => {
    client.session.emitWithAck("subscribe", [{ channel }], ([ack]) => {
      resolve(ack as SubscribeAck);
    });
  });
}

describe("socket.io framing against a relay", () => {
  it("reads the open packet and connects to the main namespace", async () => {
    const relay = await startRelay(valkey.url);
    const client = connectRaw(relay.url);
    await client.connected;

    expect(client.session.state).toBe("connected");
    expect(client.session.id).toMatch(/^[\w-]{20}$/);
    expect(client.session.engineOpen).toMatchObject({
      pingIntervalMs: 25_000,
      pingTimeoutMs: 20_000,
    });
  });

  it("subscribes in the string form and reads one message per line", async () => {
    const relay = await startRelay(valkey.url);
    const client = connectRaw(relay.url);
    await client.connected;

    client.session.emit("subscribe", "logs:framing-string");
    const [joined] = await client.waitForEvents("message", 1);
    expect(joined).toEqual(["Joined logs:framing-string"]);

    const build = syntheticBuild(valkey.url, "framing-string", "b-string");
    build.lines(20);
    await build.finish();

    const messages = await client.waitForEvents("message", 22);
    const payloads = messages.slice(1).map(([p]) => JSON.parse(p as string));
    expect(payloads.map((p) => p.seq)).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
    expect(payloads.at(-1)).toMatchObject({ type: "status", seq: 21 });
  });

  it("subscribes in the structured form, gets the ack and logs batches", async () => {
    const relay = await startRelay(valkey.url);
    const client = connectRaw(relay.url);
    await client.connected;

    const ack = await subscribeStructured(client, "logs:framing-structured");
    expect(ack).toEqual({
      ok: true,
      channel: "logs:framing-structured",
      buildId: null,
      lastSeq: 0,
    });
    expect(client.session.pendingAcks).toBe(0);

    const build = syntheticBuild(valkey.url, "framing-structured", "b-struct");
    build.lines(200);
    await build.finish();

    const [status] = await client.waitForEvents("status", 1);
    const tracker = new DeliveryTracker();
    const batches = client.events.filter((e) => e.event === "logs");
    for (const { args } of batches) {
      const event = args[0] as LogsEvent;
      expect(event.channel).toBe("logs:framing-structured");
      for (const m of event.messages) {
        if (m.type !== "gap")
          tracker.seq(m.buildId, m.seq, m.type === "status");
      }
    }

    expect(tracker.settle({ "b-struct": 201 })).toEqual({
      delivered: 201,
      lost: 0,
      undelivered: 0,
      duplicates: 0,
      gapNotices: 0,
      finishedBuilds: 1,
    });
    // 200 lines in 20 ms windows: batched, not one event per line.
    expect(batches.length).toBeLessThan(100);
    expect(status![0] as StatusEvent).toMatchObject({
      type: "status",
      seq: 201,
      channel: "logs:framing-structured",
    });
  });

  it("gets a refusal through the ack for a bad channel", async () => {
    const relay = await startRelay(valkey.url);
    const client = connectRaw(relay.url);
    await client.connected;

    const ack = await subscribeStructured(client, "logs:Not A Slug");
    expect(ack).toMatchObject({
      ok: false,
      error: { code: "RELAY_ERR_BAD_CHANNEL" },
    });
  });
});

describe("socket.io framing pings", () => {
  async function startPingServer(): Promise<string> {
    const http = createServer();
    const io = new Server(http, { pingInterval: 100, pingTimeout: 200 });
    onTestFinished(() => io.close());
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  }

  it("answers pings, so the server keeps the connection", async () => {
    const url = await startPingServer();
    const sent: string[] = [];
    const client = connectRaw(url, { sent });
    await client.connected;

    // Ten ping intervals; each ping is only sent after the last pong.
    const pongs = () => sent.filter((f) => f === PONG_FRAME).length;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (pongs() >= 10) resolve();
      };
      client.socket.on("message", check);
    });
    expect(client.session.state).toBe("connected");
  });

  it("is closed by the server when it does not answer pings", async () => {
    const url = await startPingServer();
    const client = connectRaw(url, { dropPongs: true });
    await client.connected;

    expect(await client.closed).toBe("transport closed");
  });
});

describe("socket.io frames", () => {
  it("encodes events with and without an ack id", () => {
    expect(encodeEvent("subscribe", ["logs:a"])).toBe(
      '42["subscribe","logs:a"]',
    );
    expect(encodeEvent("subscribe", [{ channel: "logs:a" }], 7)).toBe(
      '427["subscribe",{"channel":"logs:a"}]',
    );
  });

  it("decodes acks, events with ids, refusals and unknown frames", () => {
    expect(decodeFrame('4312[{"ok":true}]')).toEqual({
      kind: "ack",
      ackId: 12,
      args: '[{"ok":true}]',
    });
    expect(decodeFrame('423["ask",1]')).toMatchObject({
      kind: "event",
      event: "ask",
      ackId: 3,
    });
    expect(decodeFrame('44{"message":"Not authorized"}')).toEqual({
      kind: "connect-error",
      message: "Not authorized",
    });
    expect(decodeFrame('42/admin,["x"]').kind).toBe("unknown");
    expect(decodeFrame("9").kind).toBe("unknown");
  });
});
