/**
 * Starts synthetic builds through the launcher (`POST /projects/:slug/
 * builds`, docs/launcher.md): the repository at `GIT_URL` is cloned and
 * examples/log-generator prints lines at the rate asked for. The clone
 * needs nothing installed; the generator is plain Node.
 */
import http from "k6/http";
import { numberSetting, textSetting, launcherUrl } from "./k6-settings.ts";

export interface StartedBuild {
  slug: string;
  buildId: string;
  channel: string;
}

export interface GeneratorLoad {
  /** Lines per second the build prints. */
  linesPerSecond: number;
  /** How long it prints, in seconds. */
  durationSeconds: number;
  /** How long it waits before the first line, so viewers can join first. */
  startDelayMs: number;
}

export class BuildStartError extends Error {
  readonly code = "LOADTEST_ERR_BUILD_START";
}

/** The generator's command line for a load. */
export function generatorCommand(load: GeneratorLoad): string {
  return [
    "node generate.mjs",
    `--rate ${load.linesPerSecond}`,
    `--duration ${load.durationSeconds}`,
    `--start-delay-ms ${load.startDelayMs}`,
  ].join(" ");
}

/**
 * Starts one build of `slug`. `GIT_URL` names a clone of this repository
 * the builders can reach; `GIT_REF` optionally pins it.
 */
export function startBuild(slug: string, load: GeneratorLoad): StartedBuild {
  const body: Record<string, string> = {
    gitUrl: textSetting("GIT_URL"),
    startDir: textSetting("GENERATOR_DIR", "examples/log-generator"),
    installCommand: "true",
    buildCommand: generatorCommand(load),
  };
  const ref = __ENV.GIT_REF;
  if (ref) body.ref = ref;

  const response = http.post(
    `${launcherUrl()}/projects/${slug}/builds`,
    JSON.stringify(body),
    {
      headers: { "Content-Type": "application/json" },
      timeout: `${numberSetting("LAUNCH_TIMEOUT_S", 30, 1, 600)}s`,
    },
  );
  if (response.status !== 202 || typeof response.body !== "string") {
    throw new BuildStartError(
      `launcher answered ${response.status} for ${slug}: ${String(response.body)}`,
    );
  }

  const answer = JSON.parse(response.body) as StartedBuild;
  return { slug, buildId: answer.buildId, channel: answer.channel };
}
