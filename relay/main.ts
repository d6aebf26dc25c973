/**
 * Entry point of `bin/relay`: reads the configuration, starts one node and
 * drains it on SIGTERM or SIGINT.
 */
import { ConfigError } from "../shared/env-config.ts";
import { createLogger } from "../shared/logger.ts";
import { redactUrl } from "../shared/valkey-config.ts";
import { RELAY_USAGE, readRelayConfig } from "./config.ts";
import { RelayNode } from "./relay-node.ts";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(RELAY_USAGE);
  process.exit(0);
}

let options;
try {
  options = readRelayConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`relay: ${err.message}\n`);
  process.exit(2);
}

const logger = createLogger({
  service: "relay",
  level: options.logLevel,
  bindings: { nodeId: options.nodeId },
});

process.on("unhandledRejection", (err) => {
  logger.error({ err }, "unhandled rejection");
});

let node: RelayNode;
try {
  node = await RelayNode.start(options, logger);
} catch (err) {
  logger.fatal(
    { err, valkeyUrl: redactUrl(options.valkey.url) },
    "relay failed to start",
  );
  process.exit(1);
}

const stop = (signal: NodeJS.Signals): void => {
  logger.info({ signal }, "shutdown requested");
  const forced = setTimeout(() => {
    logger.error({ graceMs: options.shutdownGraceMs }, "drain timed out");
    process.exit(1);
  }, options.shutdownGraceMs);
  forced.unref();

  node.drain().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, "drain failed");
      process.exit(1);
    },
  );
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);

// Only now: whoever waits for `ready` may signal at once.
logger.info({ port: node.port, host: options.host }, "ready");
