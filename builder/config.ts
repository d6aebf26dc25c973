/**
 * The builder's configuration: read from the environment once, at start,
 * validated, frozen. This is the only builder module that reads
 * `process.env`; everything else receives `BuilderOptions`.
 */
import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import type { LevelWithSilent } from "pino";
import { z } from "zod";
import { isSlug, type Slug } from "../shared/channel-name.ts";
import {
  ConfigError,
  intVar,
  readEnv,
  type Env,
} from "../shared/env-config.ts";
import { LOG_LEVELS } from "../shared/logger.ts";
import {
  readValkeyConfig,
  VALKEY_URL_VARIABLES,
  type ValkeyConfig,
} from "../shared/valkey-config.ts";
import { isBuildId, type BuildId } from "../shared/wire.ts";

const KIB = 1024;
const MIB = 1024 * KIB;

export interface BuilderOptions {
  /** The project, from PROJECT_ID; its log channel is `logs:<slug>`. */
  slug: Slug;
  /** Anything `git clone` accepts, a local path too. */
  repositoryUrl: string;
  /** Branch, tag or commit to check out after cloning; none by default. */
  gitRef: string | undefined;
  /** Folder inside the repository where install and build run. Default ".". */
  startDir: string;
  /** From BUILD_ID, else DEPLOYMENT_ID, else a random UUID. */
  buildId: BuildId;
  /** Default "npm install". Run with `sh -c`. */
  installCommand: string;
  /** Default "npm run build". Run with `sh -c`. */
  buildCommand: string;
  /** Default "info". */
  logLevel: LevelWithSilent;
  valkey: ValkeyConfig;

  /** Builds of a slug whose history is kept. Default 5. */
  historyBuildsKept: number;
  /** Entries kept in one build's history stream. Default 100 000. */
  historyMaxEntries: number;
  /** Payload bytes kept in one build's history stream. Default 64 MiB. */
  historyMaxBytes: number;
  /** How long history outlives the end of its build. Default 86 400 (a day). */
  historyTtlSeconds: number;
  /** Added to the TTL while a build runs. Default 3600. */
  historyRunningMarginSeconds: number;

  /** Lines waiting for Valkey before the oldest are dropped. Default 50 000. */
  queueMaxLines: number;
  /** Payload bytes waiting for Valkey before dropping. Default 64 MiB. */
  queueMaxBytes: number;
  /** Messages in one publish call. Default 500. */
  batchMaxLines: number;
  /** Payload bytes in one publish call (one bigger message goes alone). Default 64 KiB. */
  batchMaxBytes: number;
  /** Longest wait between two tries of a failed publish. Default 2000. */
  retryMaxDelayMs: number;
  /** How long the builder waits, after the build, for the queue to empty. Default 30 000. */
  flushTimeoutMs: number;

  /** Longest line text; longer lines go out in pieces. Default 64 KiB. */
  lineMaxBytes: number;
  /** Least time between two snapshots of a line rewritten with `\r`. Default 1000. */
  progressIntervalMs: number;
}

const DEFAULTS = {
  startDir: ".",
  installCommand: "npm install",
  buildCommand: "npm run build",
  logLevel: "info",
  historyBuildsKept: 5,
  historyMaxEntries: 100_000,
  historyMaxBytes: 64 * MIB,
  historyTtlSeconds: 86_400,
  historyRunningMarginSeconds: 3600,
  queueMaxLines: 50_000,
  queueMaxBytes: 64 * MIB,
  batchMaxLines: 500,
  batchMaxBytes: 64 * KIB,
  retryMaxDelayMs: 2000,
  flushTimeoutMs: 30_000,
  lineMaxBytes: 64 * KIB,
  progressIntervalMs: 1000,
} as const satisfies Partial<BuilderOptions>;

const slugVar = z
  .string()
  .refine(
    isSlug,
    "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen",
  );

const buildIdVar = z
  .string()
  .refine(isBuildId, "must be 1-128 letters, digits, '.', '_' or '-'");

// Neither may start with "-", or git would read it as an option.
const repositoryVar = z
  .string()
  .regex(/^[^-]/, "must be a repository URL or path, not an option");
const gitRefVar = z
  .string()
  .regex(/^[^-\s]\S*$/, "must be a branch, tag or commit without spaces");

const startDirVar = z.string().refine((value) => {
  const normal = posix.normalize(value);
  return !posix.isAbsolute(normal) && !normal.split("/").includes("..");
}, "must be a relative path inside the repository");

const schema = z.object({
  PROJECT_ID: slugVar,
  GIT_REPOSITORY_URL: repositoryVar,
  GIT_REF: gitRefVar.optional(),
  START_DIR: startDirVar.default(DEFAULTS.startDir),
  BUILD_ID: buildIdVar.optional(),
  DEPLOYMENT_ID: buildIdVar.optional(),
  INSTALL_COMMAND: z.string().default(DEFAULTS.installCommand),
  BUILD_COMMAND: z.string().default(DEFAULTS.buildCommand),
  LOG_LEVEL: z.enum(LOG_LEVELS).default(DEFAULTS.logLevel),
  HISTORY_BUILDS: intVar(1, 1000).default(DEFAULTS.historyBuildsKept),
  HISTORY_MAX_ENTRIES: intVar(1, 10_000_000).default(
    DEFAULTS.historyMaxEntries,
  ),
  HISTORY_MAX_BYTES: intVar(KIB, 4096 * MIB).default(DEFAULTS.historyMaxBytes),
  HISTORY_TTL_SECONDS: intVar(1, 90 * 86_400).default(
    DEFAULTS.historyTtlSeconds,
  ),
  QUEUE_MAX_LINES: intVar(1, 10_000_000).default(DEFAULTS.queueMaxLines),
  QUEUE_MAX_BYTES: intVar(KIB, 4096 * MIB).default(DEFAULTS.queueMaxBytes),
  FLUSH_TIMEOUT_MS: intVar(0, 3_600_000).default(DEFAULTS.flushTimeoutMs),
});

/** The text `--help` prints. */
export const USAGE = `Usage: builder [--help]

Clones a repository, runs its install and build commands, and publishes every
line they print to Valkey channel logs:<PROJECT_ID>, with a history stream.
Exits 0 when the build succeeded, otherwise with the build's exit code; 2 for
a bad configuration.

Environment:
  PROJECT_ID            project slug (required; a lowercase DNS label)
  GIT_REPOSITORY_URL    repository to clone, any URL or path git accepts (required)
  GIT_REF               branch, tag or commit to check out (default: the clone's HEAD)
  START_DIR             folder inside the repository to build in (default .)
  BUILD_ID              id of this build; DEPLOYMENT_ID is read when unset
                        (default: a random UUID)
  INSTALL_COMMAND       run with sh -c (default "npm install")
  BUILD_COMMAND         run with sh -c (default "npm run build")
  LOG_LEVEL             ${LOG_LEVELS.join(", ")} (default info)
  ${VALKEY_URL_VARIABLES.join(", ")}
                        Valkey URL, first one set wins (default redis://127.0.0.1:6379)
  VALKEY_CA_FILE        PEM CA for rediss:// and valkeys:// URLs
  VALKEY_CLUSTER        true when the URL names a Valkey Cluster node
  HISTORY_BUILDS        builds per project whose history is kept (default ${DEFAULTS.historyBuildsKept})
  HISTORY_MAX_ENTRIES   entries kept per build (default ${DEFAULTS.historyMaxEntries})
  HISTORY_MAX_BYTES     payload bytes kept per build (default ${DEFAULTS.historyMaxBytes})
  HISTORY_TTL_SECONDS   history lifetime after the build ends (default ${DEFAULTS.historyTtlSeconds})
  QUEUE_MAX_LINES       lines held while Valkey is unreachable (default ${DEFAULTS.queueMaxLines})
  QUEUE_MAX_BYTES       bytes held while Valkey is unreachable (default ${DEFAULTS.queueMaxBytes})
  FLUSH_TIMEOUT_MS      wait for queued lines after the build (default ${DEFAULTS.flushTimeoutMs})
`;

/**
 * Reads and checks the builder's environment. Throws one ConfigError that
 * names every bad variable, its value and what is allowed.
 */
export function readBuilderConfig(env: Env): Readonly<BuilderOptions> {
  const problems: string[] = [];

  let vars: z.infer<typeof schema> | undefined;
  try {
    vars = readEnv(schema, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }

  let valkey: ValkeyConfig | undefined;
  try {
    valkey = readValkeyConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }

  if (!vars || !valkey) throw new ConfigError(problems);

  return Object.freeze({
    ...DEFAULTS,
    slug: vars.PROJECT_ID as Slug,
    repositoryUrl: vars.GIT_REPOSITORY_URL,
    gitRef: vars.GIT_REF,
    startDir: posix.normalize(vars.START_DIR),
    buildId: (vars.BUILD_ID ?? vars.DEPLOYMENT_ID ?? randomUUID()) as BuildId,
    installCommand: vars.INSTALL_COMMAND,
    buildCommand: vars.BUILD_COMMAND,
    logLevel: vars.LOG_LEVEL,
    valkey,
    historyBuildsKept: vars.HISTORY_BUILDS,
    historyMaxEntries: vars.HISTORY_MAX_ENTRIES,
    historyMaxBytes: vars.HISTORY_MAX_BYTES,
    historyTtlSeconds: vars.HISTORY_TTL_SECONDS,
    queueMaxLines: vars.QUEUE_MAX_LINES,
    queueMaxBytes: vars.QUEUE_MAX_BYTES,
    flushTimeoutMs: vars.FLUSH_TIMEOUT_MS,
  });
}

/** The process environment, for main.ts; nothing else reads it. */
export function processEnv(): Env {
  return process.env;
}
