/**
 * Entry point of `bin/logs`: prints a build's log as it happens and exits
 * with the build's exit code.
 */
import { LogFollower } from "../client/log-follower.ts";
import { ConfigError } from "../shared/env-config.ts";
import { LOGS_USAGE, readLogsConfig, type LogsOptions } from "./config.ts";
import { formatLine } from "./line-format.ts";

let options: LogsOptions;
try {
  options = readLogsConfig(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ConfigError) && !(err instanceof TypeError)) throw err;
  process.stderr.write(`logs: ${err.message}\n\n${LOGS_USAGE}`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(LOGS_USAGE);
  process.exit(0);
}

const color = process.stdout.isTTY === true;
const follower = new LogFollower({
  url: options.relayUrl,
  slug: options.slug,
  since: options.since,
  buildId: options.buildId,
});

// `bin/logs slug | head` closes the pipe early: that is the reader's
// choice, not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  follower.close();
  process.exit(err.code === "EPIPE" ? 0 : 1);
});

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

follower.on("line", (message) => {
  print(options.json ? JSON.stringify(message) : formatLine(message, color));
});
follower.on("gap", (notice) => {
  print(options.json ? JSON.stringify(notice) : formatLine(notice, color));
});
follower.on("status", (status) => {
  print(options.json ? JSON.stringify(status) : formatLine(status, color));
  follower.close();
  process.exitCode =
    status.exitCode === 0 && status.status !== "succeeded"
      ? 1
      : status.exitCode;
});
follower.on("refused", (error) => {
  process.stderr.write(
    `logs: refused by the relay: ${error.code}: ${error.message}\n`,
  );
  follower.close();
  process.exitCode = 2;
});

let warned = false;
follower.on("error", (err) => {
  if (warned) return;
  warned = true;
  process.stderr.write(
    `logs: cannot reach ${options.relayUrl} (${err.message}); retrying\n`,
  );
});
follower.on("subscribed", () => {
  warned = false;
});

process.once("SIGINT", () => {
  follower.close();
  process.exitCode = 130;
});
