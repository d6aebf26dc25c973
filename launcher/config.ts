/**
 * The launcher's settings, read from the environment once at start. This is
 * the only launcher module that reads `process.env`.
 */
import { z } from "zod";
import {
  ConfigError,
  intVar,
  portVar,
  readEnv,
  type Env,
} from "../shared/env-config.ts";
import { LOG_LEVELS } from "../shared/logger.ts";
import {
  readValkeyConfig,
  type ValkeyConfig,
} from "../shared/valkey-config.ts";

export const RUNNER_NAMES = ["local", "ecs"] as const;
export type RunnerName = (typeof RUNNER_NAMES)[number];

export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where and how ECS runs a build task. */
export interface EcsOptions {
  cluster: string;
  taskDefinition: string;
  subnets: readonly string[];
  /** Empty: the VPC's default security group. */
  securityGroups: readonly string[];
  assignPublicIp: "ENABLED" | "DISABLED";
  /** The container of the task definition that runs the builder. */
  containerName: string;
  region: string;
  /** Overrides the ECS endpoint, as for a local stand-in. */
  endpointUrl: string | undefined;
  /** How often unfinished tasks started here are described. Default 15000. */
  pollIntervalMs: number;
  /** Tries per ECS call, the first included. Default 3. */
  maxAttempts: number;
}

export interface LauncherOptions {
  /** 0 asks the system for a free port. Default 9000. */
  port: number;
  /** Default 0.0.0.0. */
  host: string;
  /** Also handed to local builders. Default info. */
  logLevel: LogLevel;
  /** Default local. */
  runner: RunnerName;
  /** Local builds running at once; the rest wait as `queued`. Default 4. */
  localMaxConcurrentBuilds: number;
  /** On SIGTERM, how long running local builds may go on. Default 30000. */
  shutdownGraceMs: number;
  /** How long a build record stays in Valkey. Default 604800 (7 days). */
  buildRecordTtlSeconds: number;
  /** Largest request body. Default 65536. */
  httpBodyLimitBytes: number;
  valkey: ValkeyConfig;
  /** Set when `runner` is `ecs`. */
  ecs: EcsOptions | undefined;
  /**
   * Variables a local builder inherits from the launcher (PATH, HOME, TMPDIR,
   * LANG) besides the build's own. Nothing else passes, so the launcher's
   * secrets do not reach build scripts.
   */
  inheritedEnv: Readonly<Record<string, string>>;
}

export const DEFAULTS = {
  port: 9000,
  host: "0.0.0.0",
  logLevel: "info",
  runner: "local",
  localMaxConcurrentBuilds: 4,
  shutdownGraceMs: 30_000,
  buildRecordTtlSeconds: 7 * 24 * 60 * 60,
  httpBodyLimitBytes: 64 * 1024,
  ecsAssignPublicIp: "DISABLED",
  ecsPollIntervalMs: 15_000,
  ecsMaxAttempts: 3,
} as const;

const INHERITED_VARIABLES = ["PATH", "HOME", "TMPDIR", "LANG"] as const;

const baseSchema = z.object({
  PORT: portVar.default(DEFAULTS.port),
  HOST: z.string().default(DEFAULTS.host),
  LOG_LEVEL: z.enum(LOG_LEVELS).default(DEFAULTS.logLevel),
  RUNNER: z.enum(RUNNER_NAMES).default(DEFAULTS.runner),
  LOCAL_MAX_CONCURRENT_BUILDS: intVar(1, 256).default(
    DEFAULTS.localMaxConcurrentBuilds,
  ),
  SHUTDOWN_GRACE_MS: intVar(0, 3_600_000).default(DEFAULTS.shutdownGraceMs),
  BUILD_RECORD_TTL_SECONDS: intVar(60, 366 * 24 * 60 * 60).default(
    DEFAULTS.buildRecordTtlSeconds,
  ),
  HTTP_BODY_LIMIT_BYTES: intVar(1024, 16 * 1024 * 1024).default(
    DEFAULTS.httpBodyLimitBytes,
  ),
});

function idList(prefix: string) {
  const pattern = new RegExp(`^${prefix}-[0-9a-z]+$`);
  const split = (value: string) => value.split(",").map((id) => id.trim());

  return z
    .string()
    .refine(
      (value) => split(value).every((id) => pattern.test(id)),
      `must be a comma-separated list of ${prefix}-… ids`,
    )
    .transform(split);
}

const ecsSchema = z.object({
  ECS_CLUSTER: z.string("required when RUNNER=ecs").max(2048),
  ECS_TASK_DEFINITION: z.string("required when RUNNER=ecs").max(2048),
  ECS_SUBNETS: idList("subnet"),
  ECS_SECURITY_GROUPS: idList("sg").optional(),
  ECS_ASSIGN_PUBLIC_IP: z
    .enum(["ENABLED", "DISABLED"])
    .default(DEFAULTS.ecsAssignPublicIp),
  ECS_CONTAINER_NAME: z.string("required when RUNNER=ecs").max(255),
  AWS_REGION: z
    .string("required when RUNNER=ecs")
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be a region such as eu-west-1"),
  AWS_ENDPOINT_URL_ECS: z
    .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .optional(),
  ECS_POLL_INTERVAL_MS: intVar(100, 3_600_000).default(
    DEFAULTS.ecsPollIntervalMs,
  ),
  ECS_MAX_ATTEMPTS: intVar(1, 10).default(DEFAULTS.ecsMaxAttempts),
});

/**
 * Reads and checks every variable. Throws a ConfigError listing each bad one
 * with its value and what is allowed.
 */
export function readLauncherConfig(env: Env = process.env): LauncherOptions {
  const problems: string[] = [];
  const attempt = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };

  const base = attempt(() => readEnv(baseSchema, env));
  const valkey = attempt(() => readValkeyConfig(env));
  // Checked even when another variable is bad, so one run lists it all.
  const wantsEcs = (base?.RUNNER ?? env.RUNNER) === "ecs";
  const ecs = wantsEcs ? attempt(() => readEcsOptions(env)) : undefined;

  if (!base || !valkey || problems.length > 0) {
    throw new ConfigError(problems);
  }

  const inheritedEnv: Record<string, string> = {};
  for (const name of INHERITED_VARIABLES) {
    const value = env[name];
    if (value !== undefined) inheritedEnv[name] = value;
  }

  return Object.freeze({
    port: base.PORT,
    host: base.HOST,
    logLevel: base.LOG_LEVEL,
    runner: base.RUNNER,
    localMaxConcurrentBuilds: base.LOCAL_MAX_CONCURRENT_BUILDS,
    shutdownGraceMs: base.SHUTDOWN_GRACE_MS,
    buildRecordTtlSeconds: base.BUILD_RECORD_TTL_SECONDS,
    httpBodyLimitBytes: base.HTTP_BODY_LIMIT_BYTES,
    valkey,
    ecs,
    inheritedEnv: Object.freeze(inheritedEnv),
  });
}

function readEcsOptions(env: Env): EcsOptions {
  const ecs = readEnv(ecsSchema, env);

  return Object.freeze({
    cluster: ecs.ECS_CLUSTER,
    taskDefinition: ecs.ECS_TASK_DEFINITION,
    subnets: ecs.ECS_SUBNETS,
    securityGroups: ecs.ECS_SECURITY_GROUPS ?? [],
    assignPublicIp: ecs.ECS_ASSIGN_PUBLIC_IP,
    containerName: ecs.ECS_CONTAINER_NAME,
    region: ecs.AWS_REGION,
    endpointUrl: ecs.AWS_ENDPOINT_URL_ECS,
    pollIntervalMs: ecs.ECS_POLL_INTERVAL_MS,
    maxAttempts: ecs.ECS_MAX_ATTEMPTS,
  });
}

type UsageRow = readonly [variable: string, meaning: string];

const d = DEFAULTS;
const COMMON_ROWS: readonly UsageRow[] = [
  ["PORT", `listening port, 0 for any free one (default ${d.port})`],
  ["HOST", `listening address (default ${d.host})`],
  ["LOG_LEVEL", `${LOG_LEVELS.join(", ")} (default ${d.logLevel})`],
  ["RUNNER", `local or ecs (default ${d.runner})`],
  [
    "LOCAL_MAX_CONCURRENT_BUILDS",
    `local builds at once, the rest queue (default ${d.localMaxConcurrentBuilds})`,
  ],
  [
    "SHUTDOWN_GRACE_MS",
    `on SIGTERM, time left to local builds (default ${d.shutdownGraceMs})`,
  ],
  [
    "BUILD_RECORD_TTL_SECONDS",
    `life of a build record (default ${d.buildRecordTtlSeconds})`,
  ],
  [
    "HTTP_BODY_LIMIT_BYTES",
    `largest request body (default ${d.httpBodyLimitBytes})`,
  ],
  ["REDIS_URL", "Valkey URL (default redis://127.0.0.1:6379)"],
  ["VALKEY_URL", "read when REDIS_URL is unset"],
  ["AIVEN_REDIS_URL", "read when both above are unset"],
  ["VALKEY_CA_FILE", "PEM CA for rediss:// and valkeys://"],
  ["VALKEY_CLUSTER", "true when the URL names a Valkey Cluster node"],
];

const ECS_ROWS: readonly UsageRow[] = [
  ["ECS_CLUSTER", "cluster name or ARN (required)"],
  ["ECS_TASK_DEFINITION", "family[:revision] or ARN (required)"],
  ["ECS_SUBNETS", "comma-separated subnet-… ids (required)"],
  ["ECS_SECURITY_GROUPS", "comma-separated sg-… ids (default: the VPC's)"],
  [
    "ECS_ASSIGN_PUBLIC_IP",
    `ENABLED or DISABLED (default ${d.ecsAssignPublicIp})`,
  ],
  ["ECS_CONTAINER_NAME", "container that runs the builder (required)"],
  ["AWS_REGION", "such as eu-west-1 (required)"],
  ["AWS_ENDPOINT_URL_ECS", "ECS endpoint override, an http(s) URL"],
  [
    "ECS_POLL_INTERVAL_MS",
    `how often running tasks are described (default ${d.ecsPollIntervalMs})`,
  ],
  ["ECS_MAX_ATTEMPTS", `tries per ECS call (default ${d.ecsMaxAttempts})`],
];

const rows = (list: readonly UsageRow[]) =>
  list.map(([name, meaning]) => `  ${name.padEnd(29)}${meaning}`).join("\n");

/** What `--help` prints: every variable, its meaning and its default. */
export const USAGE = `Usage: launcher [--help]

Starts builds over HTTP: locally with bin/builder, or as ECS Fargate tasks.
Every setting comes from the environment; an empty value counts as unset.

${rows(COMMON_ROWS)}

With RUNNER=ecs:
${rows(ECS_ROWS)}

AWS credentials come from the AWS SDK's usual chain (variables, profile,
task or instance role).

Exit status: 0 after a clean shutdown, 1 on a fault, 2 on bad configuration.
`;
