/**
 * The launcher's entry point, run by `bin/launcher`: reads the environment,
 * starts, logs `ready` with the port, and shuts down cleanly on SIGTERM or
 * SIGINT.
 *
 * Exit status: 0 after a clean shutdown, 1 on a fault, 2 on bad
 * configuration (the message names each bad variable).
 */
import { ConfigError } from "../shared/env-config.ts";
import { createLogger } from "../shared/logger.ts";
import { readLauncherConfig, USAGE, type LauncherOptions } from "./config.ts";
import { Launcher } from "./launcher.ts";
import { KILL_AFTER_MS } from "./local-runner.ts";

// Past the grace period and the builders' time to die, a shutdown that has
// still not finished is stuck; this is how long it may take beyond those.
const SHUTDOWN_SLACK_MS = 10_000;

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(USAGE);
  process.exit(0);
}

let options: LauncherOptions;
try {
  options = readLauncherConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`launcher: ${err.message}\n`);
  process.exit(2);
}

const logger = createLogger({ service: "launcher", level: options.logLevel });

process.on("unhandledRejection", (err) => {
  logger.fatal({ err }, "unhandled rejection");
  process.exit(1);
});

let launcher: Launcher;
try {
  launcher = await Launcher.start(options, { logger });
} catch (err) {
  logger.fatal({ err }, "start failed");
  process.exit(1);
}

function shutDown(signal: NodeJS.Signals): void {
  logger.info({ signal }, "signal received");

  const stuck = setTimeout(
    () => {
      logger.fatal("shutdown did not finish in time");
      process.exit(1);
    },
    options.shutdownGraceMs + KILL_AFTER_MS + SHUTDOWN_SLACK_MS,
  );
  stuck.unref();

  launcher.close().then(
    () => logger.info("stopped"),
    (err: unknown) => {
      logger.fatal({ err }, "shutdown failed");
      process.exitCode = 1;
    },
  );
}

process.once("SIGTERM", shutDown);
process.once("SIGINT", shutDown);

// Only now: whoever waits for `ready` may signal at once.
logger.info(
  { port: launcher.port, host: options.host, runner: options.runner },
  "ready",
);
