/**
 * Runs one baseline node (baseline-server.ts) as its own process, for the
 * benchmark. Environment: `PORT` (0 = any), `HOST`, `REDIS_URL`, and
 * `BASELINE_FORWARDS_LOGS=1` on exactly one node. Prints one JSON line
 * `{"msg":"ready","port":<port>}` once it serves.
 */
import { startBaselineServer } from "./baseline-server.ts";

const server = await startBaselineServer({
  port: Number(process.env.PORT ?? 0),
  host: process.env.HOST ?? "127.0.0.1",
  valkeyUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  forwardsLogs: process.env.BASELINE_FORWARDS_LOGS === "1",
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
