/**
 * The benchmark's baseline: the textbook setup this system grew out of,
 * kept deliberately plain so the comparison is with what a user would
 * otherwise pick. Socket.IO on Node's http server with its default `ws`
 * engine and the classic Redis adapter; one node (`forwardsLogs`)
 * PSUBSCRIBEs `logs:*` and emits one `message` per line to the channel's
 * room, which the adapter PUBLISHes to every node of the cluster.
 *
 * Viewers use the string form only: `subscribe` with `logs:<slug>`, then
 * `Joined logs:<slug>` and the payloads, as the old dashboard expects.
 */
import { once } from "node:events";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

export interface BaselineOptions {
  port: number;
  host: string;
  valkeyUrl: string;
  /** This node subscribes to the log channels and emits their lines. */
  forwardsLogs: boolean;
}

export interface BaselineServer {
  port: number;
  close(): Promise<void>;
}

export async function startBaselineServer(
  options: BaselineOptions,
): Promise<BaselineServer> {
  const pub = new Redis(options.valkeyUrl);
  const sub = pub.duplicate();
  const logs = options.forwardsLogs ? pub.duplicate() : undefined;
  for (const client of [pub, sub, logs]) {
    client?.on("error", (err: Error) => {
      process.stderr.write(`baseline: valkey error: ${err.message}\n`);
    });
  }

  const httpServer: HttpServer = createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pub, sub),
    cors: { origin: "*" },
    serveClient: false,
  });

  io.on("connection", (socket) => {
    socket.on("subscribe", (channel: unknown) => {
      if (typeof channel !== "string") return;
      void socket.join(channel);
      socket.emit("message", `Joined ${channel}`);
    });
  });

  if (logs) {
    logs.on(
      "pmessage",
      (_pattern: string, channel: string, message: string) => {
        io.to(channel).emit("message", message);
      },
    );
    await logs.psubscribe("logs:*");
  }
  // The adapter's PSUBSCRIBE went out when the namespace was created; a
  // PING on the same connection answers only after it was applied.
  await sub.ping();

  httpServer.listen(options.port, options.host);
  await once(httpServer, "listening");
  const { port } = httpServer.address() as AddressInfo;

  return {
    port,
    async close() {
      await io.close();
      for (const client of [pub, sub, logs]) client?.disconnect();
    },
  };
}
