/**
 * Entry point of `bin/logs`: prints a build's log as it happens and exits
 * with the build's exit code.
 */
import { LogFollower } from "../client/log-follower.ts";
import { ConfigError } from "../shared/env-config.ts";
import { LOGS_USAGE, readLogsConfig, type LogsOptions } from "./config.ts";
import { formatLine } from "./line-format.ts";

/** Exit code when the build followed with --build was superseded: sysexits' "try again later". */
const SUPERSEDED_EXIT_CODE = 75;

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

/**
 * Followed with --build, another build's line means a newer build of the
 * slug started while this one ran: the relay follows the newer one, and
 * the rest of this build is only in history. Printing on, and exiting
 * with the other build's code, would pass its result off as this one's.
 */
const otherBuild = (buildId: string): boolean => {
  if (options.buildId === undefined || buildId === options.buildId) {
    return false;
  }
  process.stderr.write(
    `logs: a newer build of ${options.slug} (${buildId}) started while ${options.buildId} ran; ` +
      `the rest of ${options.buildId} is in history: run this again once it has ended\n`,
  );
  follower.close();
  process.exitCode = SUPERSEDED_EXIT_CODE;
  return true;
};

/**
 * Followed by slug, the viewer moves on to a newer build of it, and exits
 * with that build's code. When the newer one starts before the one being
 * printed has ended, that build's end will not be printed: said once per
 * switch, with how to see the rest.
 */
let printing: { buildId: string; ended: boolean } | undefined;
const noteSwitch = (buildId: string): void => {
  if (printing?.buildId === buildId) return;
  if (printing !== undefined && !printing.ended) {
    process.stderr.write(
      `logs: a newer build of ${options.slug} (${buildId}) started while ${printing.buildId} ran; ` +
        `following ${buildId} (the rest of ${printing.buildId}: logs --build ${printing.buildId} ${options.slug})\n`,
    );
  }
  printing = { buildId, ended: false };
};

follower.on("line", (message) => {
  if (otherBuild(message.buildId)) return;
  noteSwitch(message.buildId);
  print(options.json ? JSON.stringify(message) : formatLine(message, color));
});
follower.on("gap", (notice) => {
  print(options.json ? JSON.stringify(notice) : formatLine(notice, color));
});
follower.on("status", (status) => {
  if (otherBuild(status.buildId)) return;
  noteSwitch(status.buildId);
  printing!.ended = true;
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
let told = false;
follower.on("subscribed", (ack) => {
  warned = false;
  if (told) return;
  told = true;
  if (ack.buildId === null) {
    process.stderr.write(
      `logs: ${options.slug} has no build in history yet; waiting for one\n`,
    );
  } else if (options.buildId !== undefined && ack.lastSeq === 0) {
    process.stderr.write(
      `logs: no line of build ${options.buildId} is in history (not started yet, or no longer kept); waiting for it\n`,
    );
  } else if (options.since > 0 && options.since >= ack.lastSeq) {
    process.stderr.write(
      `logs: build ${ack.buildId} of ${options.slug} has nothing after line ${options.since} ` +
        `(its last is ${ack.lastSeq}); waiting for more, or for the next build\n`,
    );
  }
});

process.once("SIGINT", () => {
  follower.close();
  process.exitCode = 130;
});
