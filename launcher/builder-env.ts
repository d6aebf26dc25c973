/**
 * The environment `bin/builder` reads, made from a build. Both runners hand
 * it over: the local one as the child's environment, the ECS one as the
 * container's environment overrides.
 *
 * | variable | from |
 * | --- | --- |
 * | `PROJECT_ID` | the slug |
 * | `GIT_REPOSITORY_URL` | `gitUrl` |
 * | `GIT_REF` | `ref`, when given |
 * | `START_DIR` | `startDir`, when given |
 * | `BUILD_ID` | the build id the launcher chose |
 * | `INSTALL_COMMAND` | `installCommand`, when given |
 * | `BUILD_COMMAND` | `buildCommand`, when given |
 * | `REDIS_URL` | the launcher's own Valkey URL |
 * | `LOG_LEVEL` | the launcher's own log level |
 *
 * A field the request left out is left out here too, so the builder (or the
 * ECS task definition) applies its own default.
 */
import type { BuildSpec } from "./build-runner.ts";
import type { LogLevel } from "./config.ts";

export function builderEnv(
  spec: BuildSpec,
  valkeyUrl: string,
  logLevel: LogLevel,
): Record<string, string> {
  const env: Record<string, string> = {
    PROJECT_ID: spec.slug,
    GIT_REPOSITORY_URL: spec.gitUrl,
    BUILD_ID: spec.buildId,
    REDIS_URL: valkeyUrl,
    LOG_LEVEL: logLevel,
  };

  if (spec.ref !== undefined) env.GIT_REF = spec.ref;
  if (spec.startDir !== undefined) env.START_DIR = spec.startDir;
  if (spec.installCommand !== undefined) {
    env.INSTALL_COMMAND = spec.installCommand;
  }
  if (spec.buildCommand !== undefined) env.BUILD_COMMAND = spec.buildCommand;

  return env;
}
