/**
 * A viewer that keeps draining its backlog is alive even when its answer
 * to Engine.IO's ping waits behind the data: `keptReading` starts the
 * ping's deadline over, on a real Engine.IO server with a client that
 * never answers pings.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type Socket } from "socket.io";
import { expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import {
  PONG_FRAME,
  SocketIoSession,
  websocketUrl,
} from "../load-tests/socketio-framing.ts";
import { keptReading } from "../relay/viewer-backlog.ts";

it("restarts the ping deadline of a viewer that keeps reading, and only then", async () => {
  const http = createServer();
  const io = new Server(http, { pingInterval: 300, pingTimeout: 300 });
  onTestFinished(() => io.close());
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const { port } = http.address() as AddressInfo;

  const connected = once(io, "connection") as Promise<[Socket]>;
  const ws = new WebSocket(websocketUrl(`http://127.0.0.1:${port}`));
  onTestFinished(() => ws.terminate());
  const session = new SocketIoSession({
    // Pings go unanswered: the client's reading is all that shows it lives.
    send: (frame) => {
      if (frame !== PONG_FRAME) ws.send(frame);
    },
  });
  ws.on("message", (data: Buffer) => session.receive(data.toString()));
  const [socket] = await connected;
  const reason = new Promise<string>((resolve) => {
    socket.on("disconnect", resolve);
  });

  // Reading: 2 s, more than three times the 600 ms a silent client lasts.
  const keepAlive = setInterval(() => keptReading(socket), 100);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  expect(socket.connected).toBe(true);

  // Not reading any more: the deadline holds.
  clearInterval(keepAlive);
  const stoppedAt = Date.now();
  expect(await reason).toBe("ping timeout");
  expect(Date.now() - stoppedAt).toBeLessThan(1500);
});
