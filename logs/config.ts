/**
 * Settings of `bin/logs`, the terminal viewer: arguments and environment.
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `RELAY_URL` | `http://127.0.0.1:9002` | relay or load balancer to follow through |
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { isSlug } from "../shared/channel-name.ts";
import {
  ConfigError,
  intVar,
  readEnv,
  type Env,
} from "../shared/env-config.ts";

export interface LogsOptions {
  relayUrl: string;
  slug: string;
  since: number;
  buildId: string | undefined;
  json: boolean;
  help: boolean;
}

export const LOGS_USAGE = `Usage: logs [--since N] [--build ID] [--json] <slug>

Follows the build log of <slug> live through a relay and exits with the
build's exit code when its final status arrives. It starts at the first line
of the slug's latest build, or of the build named by --build (waiting for it
to start if it has not), after line --since if given. Without --build it
moves on to a newer build of the slug that starts meanwhile, and exits with
that build's code; if the newer one starts before the build it was printing
ended, it says so on stderr.

  --since N    start after line N
  --build ID   follow this build (as the launcher's answer names it); if a
               newer build of the slug starts while it runs, stop with
               exit code 75 (the rest of it is in history)
  --json       print each message as its JSON object

Environment:
  RELAY_URL    relay or load balancer URL (default http://127.0.0.1:9002)
`;

const schema = z.object({
  RELAY_URL: z.url().default("http://127.0.0.1:9002"),
});

export function readLogsConfig(
  argv: readonly string[],
  env: Env = process.env,
): LogsOptions {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      since: { type: "string" },
      build: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const { RELAY_URL } = readEnv(schema, env);

  const help = values.help ?? false;
  if (positionals.length > 1) {
    throw new ConfigError([
      `unexpected arguments ${JSON.stringify(positionals.slice(1))}: give one slug`,
    ]);
  }
  const slug = positionals[0] ?? "";
  if (!help && !isSlug(slug)) {
    throw new ConfigError([
      `slug ${JSON.stringify(slug)}: must be 1-63 of a-z 0-9 and inner hyphens`,
    ]);
  }

  const since = intVar(0, Number.MAX_SAFE_INTEGER).safeParse(
    values.since ?? "0",
  );
  if (!since.success) {
    throw new ConfigError([
      `--since ${JSON.stringify(values.since)}: must be a whole number`,
    ]);
  }

  return {
    relayUrl: RELAY_URL,
    slug,
    since: since.data,
    buildId: values.build,
    json: values.json ?? false,
    help,
  };
}
