/**
 * The benchmark's floor: a bare uWebSockets.js server pushing the very
 * frames a relay sends to the very same viewers, with no Socket.IO and no
 * adapter; what this machine can do at most for the same work.
 *
 * It speaks just enough Engine.IO and Socket.IO (load-tests/
 * socketio-framing.ts) to pass for a relay: the open packet, the connect,
 * pings, and both subscribe forms. Each node SUBSCRIBEs to a log channel
 * itself when its first viewer of the channel arrives and answers the
 * subscribe only once Valkey confirmed it, so a subscribed viewer misses
 * nothing. String-form viewers get one `message` frame per line through a
 * uWS topic; structured viewers get one `logs` frame per channel per
 * `batchWindowMs` (or `batchMaxLines`), built by joining the payloads as
 * they are, which is byte for byte what a relay sends.
 *
 * It keeps no history and no ownership: a viewer gets what is published
 * after it subscribed. Backpressure is buffered, never dropped, so a
 * slow viewer costs memory rather than lines.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import uWS from "uWebSockets.js";
import {
  decodeFrame,
  encodeAck,
  encodeEvent,
  eventArgs,
} from "../socketio-framing.ts";
import { BenchError, BenchErrorCode } from "../bench/bench-errors.ts";

export interface FloorOptions {
  port: number;
  host: string;
  valkeyUrl: string;
  /** How long lines gather before one `logs` frame. Default 20. */
  batchWindowMs?: number;
  /** A `logs` frame goes out early at this many lines. Default 500. */
  batchMaxLines?: number;
}

export interface FloorServer {
  port: number;
  close(): Promise<void>;
}

interface ViewerData {
  sid: string;
  closed: boolean;
}

const PING_INTERVAL_MS = 25_000;
const PING_TOPIC = "engine:ping";
const MAX_BACKPRESSURE_BYTES = 1024 * 1024 * 1024;

const linesTopic = (channel: string): string => `${channel}:message`;
const batchesTopic = (channel: string): string => `${channel}:logs`;

export async function startFloorServer(
  options: FloorOptions,
): Promise<FloorServer> {
  const batchWindowMs = options.batchWindowMs ?? 20;
  const batchMaxLines = options.batchMaxLines ?? 500;
  const subscriber = new Redis(options.valkeyUrl);
  subscriber.on("error", (err: Error) => {
    process.stderr.write(`floor: valkey error: ${err.message}\n`);
  });

  const app = uWS.App();
  const subscribed = new Map<string, Promise<unknown>>();
  const pending = new Map<string, string[]>();
  const timers = new Map<string, NodeJS.Timeout>();

  const flush = (channel: string): void => {
    clearTimeout(timers.get(channel));
    timers.delete(channel);
    const payloads = pending.get(channel);
    pending.delete(channel);
    if (!payloads || payloads.length === 0) return;

    const head = `42["logs",{"channel":${JSON.stringify(channel)},"messages":[`;
    app.publish(batchesTopic(channel), `${head}${payloads.join(",")}]}]`);
    for (const payload of payloads) {
      if (!payload.startsWith('{"type":"status"')) continue;
      const withChannel = `${payload.slice(0, -1)},"channel":${JSON.stringify(channel)}}`;
      app.publish(batchesTopic(channel), `42["status",${withChannel}]`);
    }
  };

  subscriber.on("message", (channel: string, payload: string) => {
    app.publish(linesTopic(channel), encodeEvent("message", [payload]));

    let batch = pending.get(channel);
    if (!batch) {
      batch = [];
      pending.set(channel, batch);
    }
    batch.push(payload);
    if (batch.length >= batchMaxLines) flush(channel);
    else if (!timers.has(channel)) {
      timers.set(
        channel,
        setTimeout(() => flush(channel), batchWindowMs),
      );
    }
  });

  const follow = (channel: string): Promise<unknown> => {
    let done = subscribed.get(channel);
    if (!done) {
      done = subscriber.subscribe(channel);
      subscribed.set(channel, done);
    }
    return done;
  };

  const onSubscribe = (
    ws: uWS.WebSocket<ViewerData>,
    raw: unknown,
    ackId: number | undefined,
  ): void => {
    const structured = typeof raw === "object" && raw !== null;
    const channel = structured ? (raw as { channel?: unknown }).channel : raw;
    if (typeof channel !== "string" || !channel.startsWith("logs:")) return;

    follow(channel).then(
      () => {
        const data = ws.getUserData();
        if (data.closed) return;
        ws.cork(() => {
          if (!structured) {
            ws.subscribe(linesTopic(channel));
            ws.send(encodeEvent("message", [`Joined ${channel}`]));
            return;
          }
          ws.subscribe(batchesTopic(channel));
          if (ackId !== undefined) {
            const ack = { ok: true, channel, buildId: null, lastSeq: 0 };
            ws.send(encodeAck(ackId, [ack]));
          }
        });
      },
      (err: unknown) => {
        process.stderr.write(`floor: subscribe failed: ${String(err)}\n`);
      },
    );
  };

  app.ws<ViewerData>("/socket.io/", {
    maxBackpressure: MAX_BACKPRESSURE_BYTES,
    closeOnBackpressureLimit: 0,
    idleTimeout: 0,
    maxPayloadLength: 1024 * 1024,
    upgrade: (res, req, context) => {
      res.upgrade<ViewerData>(
        { sid: randomBytes(10).toString("base64url"), closed: false },
        req.getHeader("sec-websocket-key"),
        req.getHeader("sec-websocket-protocol"),
        req.getHeader("sec-websocket-extensions"),
        context,
      );
    },
    open: (ws) => {
      const open = {
        sid: ws.getUserData().sid,
        upgrades: [],
        pingInterval: PING_INTERVAL_MS,
        pingTimeout: 20_000,
        maxPayload: 1_000_000,
      };
      ws.subscribe(PING_TOPIC);
      ws.send(`0${JSON.stringify(open)}`);
    },
    message: (ws, message) => {
      const frame = decodeFrame(Buffer.from(message).toString());
      // The client's connect (`40`, or `40{auth}`) has no sid, so the
      // client-side decoder calls it unknown.
      if (frame.kind === "unknown" && frame.frame.startsWith("40")) {
        ws.send(`40${JSON.stringify({ sid: ws.getUserData().sid })}`);
      } else if (frame.kind === "event" && frame.event === "subscribe") {
        onSubscribe(ws, eventArgs(frame.args)[0], frame.ackId);
      }
    },
    close: (ws) => {
      ws.getUserData().closed = true;
    },
  });

  const pinger = setInterval(
    () => app.publish(PING_TOPIC, "2"),
    PING_INTERVAL_MS,
  );

  const listenSocket = await new Promise<uWS.us_listen_socket>(
    (resolve, reject) => {
      app.listen(options.host, options.port, (socket) => {
        if (socket) resolve(socket);
        else {
          reject(
            new BenchError(BenchErrorCode.SERVER_START, "floor: cannot listen"),
          );
        }
      });
    },
  );
  const port = uWS.us_socket_local_port(
    listenSocket as unknown as uWS.us_socket,
  );

  return {
    port,
    async close() {
      clearInterval(pinger);
      for (const timer of timers.values()) clearTimeout(timer);
      uWS.us_listen_socket_close(listenSocket);
      subscriber.disconnect();
    },
  };
}
