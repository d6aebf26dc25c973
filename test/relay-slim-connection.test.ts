/**
 * A connected viewer keeps on its node only what the relay uses, and still
 * gets everything sent to its rooms. Socket.IO runs in this test's own
 * process on uWebSockets.js, configured as relay/relay-node.ts does it
 * (its integration patches the adapter for the whole process, and this
 * file starts one server).
 */
import { once } from "node:events";
import { Server, type Socket as ServerSocket } from "socket.io";
import { io, type Socket as ClientSocket } from "socket.io-client";
import uWS from "uWebSockets.js";
import { expect, it, onTestFinished } from "vitest";
import { slimConnection } from "../relay/slim-connection.ts";

interface TestServer {
  io: Server;
  url: string;
  /** The server side of the next connection. */
  nextConnection(): Promise<ServerSocket>;
}

async function startServer(): Promise<TestServer> {
  const app = uWS.App();
  const server = new Server({ cors: { origin: "*" }, serveClient: false });
  server.attachApp(app);

  const pending: Array<(socket: ServerSocket) => void> = [];
  server.on("connection", (socket) => {
    slimConnection(socket);
    pending.shift()?.(socket);
  });

  const listenSocket = await new Promise<uWS.us_listen_socket>(
    (resolve, reject) => {
      app.listen("127.0.0.1", 0, (socket) => {
        if (socket) resolve(socket);
        else reject(new Error("could not listen"));
      });
    },
  );
  onTestFinished(async () => {
    uWS.us_listen_socket_close(listenSocket);
    await server.close();
  });

  const port = uWS.us_socket_local_port(
    listenSocket as unknown as uWS.us_socket,
  );
  return {
    io: server,
    url: `http://127.0.0.1:${port}`,
    nextConnection: () =>
      new Promise((resolve) => {
        pending.push(resolve);
      }),
  };
}

function connectViewer(
  url: string,
  transports: Array<"polling" | "websocket">,
): ClientSocket {
  const socket = io(url, {
    forceNew: true,
    transports,
    reconnection: false,
    auth: { token: "viewer-token" },
  });
  onTestFinished(() => {
    socket.close();
  });
  return socket;
}

/** Resolves once the connection runs on WebSocket. */
async function onWebSocket(socket: ServerSocket): Promise<void> {
  if (socket.conn.transport.name === "websocket") return;
  await once(socket.conn, "upgrade");
}

for (const transports of [["websocket"], ["polling", "websocket"]] as Array<
  Array<"polling" | "websocket">
>) {
  const how = transports.join(" then ");

  it(`keeps no room named after the socket id (${how})`, async () => {
    const server = await startServer();
    const connection = server.nextConnection();
    const viewer = connectViewer(server.url, transports);
    const socket = await connection;
    await onWebSocket(socket);

    const adapter = server.io.of("/").adapter;
    expect([...socket.rooms]).toEqual([]);
    expect(adapter.rooms.has(socket.id)).toBe(false);

    await socket.join("logs:slim");
    const received = new Promise<unknown>((resolve) => {
      viewer.once("message", resolve);
    });
    server.io.to("logs:slim").emit("message", "Joined logs:slim");
    expect(await received).toBe("Joined logs:slim");

    viewer.close();
    await once(socket, "disconnect");
    expect(adapter.rooms.size).toBe(0);
    expect(adapter.sids.size).toBe(0);
  });

  it(`keeps neither the opening request nor the upgrade's response (${how})`, async () => {
    const server = await startServer();
    const connection = server.nextConnection();
    connectViewer(server.url, transports);
    const socket = await connection;
    await onWebSocket(socket);

    expect(socket.request).toBeUndefined();
    expect(socket.handshake.headers).toEqual({});
    expect(socket.handshake.query).toEqual({});
    expect(socket.handshake.url).toBe("");
    expect(socket.handshake.auth).toEqual({});
    expect(socket.handshake.address).toBe("127.0.0.1");
    expect(socket.handshake.time).toBe("");
    expect(typeof socket.handshake.issued).toBe("number");
    expect(socket.conn.transport.listenerCount("headers")).toBe(0);

    const transport = socket.conn.transport as unknown as {
      socket: { getUserData(): { response?: unknown } };
    };
    expect(transport.socket.getUserData().response).toBeUndefined();
  });

  it(`still delivers, pings and closes with its listeners compacted (${how})`, async () => {
    const server = await startServer();
    const connection = server.nextConnection();
    const viewer = connectViewer(server.url, transports);
    const socket = await connection;
    await onWebSocket(socket);

    // Socket.IO's own listeners, moved to the compact form, still answer.
    const heartbeat = once(socket.conn, "heartbeat");
    (socket.conn as unknown as { sendPacket(type: string): void }).sendPacket(
      "ping",
    );
    await heartbeat;

    const received = new Promise<unknown>((resolve) => {
      viewer.once("message", resolve);
    });
    socket.emit("message", "still here");
    expect(await received).toBe("still here");

    const reasons: string[] = [];
    socket.on("disconnect", (reason) => reasons.push(reason));
    const closed = once(socket.conn, "close");
    viewer.close();
    await closed;
    expect(reasons).toEqual(["client namespace disconnect"]);
    // Engine.IO's own `once("close")` bookkeeping ran too.
    expect(server.io.engine.clientsCount).toBe(0);
  });
}
