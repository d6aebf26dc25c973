/**
 * Runs one floor node (floor-server.ts) as its own process, for the
 * benchmark. Environment: `PORT` (0 = any), `HOST`, `REDIS_URL`,
 * `BATCH_WINDOW_MS`. Prints one JSON line `{"msg":"ready","port":<port>}`
 * once it serves.
 */
import { startFloorServer } from "./floor-server.ts";

const server = await startFloorServer({
  port: Number(process.env.PORT ?? 0),
  host: process.env.HOST ?? "127.0.0.1",
  valkeyUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  batchWindowMs: Number(process.env.BATCH_WINDOW_MS ?? 20),
});
process.stdout.write(
  `${JSON.stringify({ msg: "ready", port: server.port })}\n`,
);

const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
