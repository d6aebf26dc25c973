/**
 * k6 scenario `many-builds`: M concurrent builds of different slugs, a few
 * viewers each.
 *
 * `setup` starts `BUILDS` synthetic builds through the launcher, each
 * printing `RATE` lines a second for `DURATION_S` seconds after
 * `START_DELAY_S`. VU i follows build i / `VIEWERS_PER_BUILD` to its
 * status. Same checks and thresholds as `viewers`.
 *
 * The launcher must be allowed to run that many builds at once
 * (`LOCAL_MAX_CONCURRENT_BUILDS`, or ECS capacity); queued builds start
 * late and their viewers wait for them within `SLACK_S`.
 */
import exec from "k6/execution";
import type { Options } from "k6/options";
import { startBuild, type StartedBuild } from "./build-starter.ts";
import {
  numberSetting,
  relayUrl,
  slugPrefix,
  viewerToken,
} from "./k6-settings.ts";
import { followChannel } from "./log-viewer.ts";
import { viewerThresholds } from "./viewer-metrics.ts";

const BUILDS = numberSetting("BUILDS", 50, 1, 10_000);
const VIEWERS_PER_BUILD = numberSetting("VIEWERS_PER_BUILD", 4, 1, 1000);
const RATE = numberSetting("RATE", 20, 1, 100_000);
const DURATION_S = numberSetting("DURATION_S", 120, 1, 86_400);
const START_DELAY_S = numberSetting("START_DELAY_S", 30, 0, 3600);
const SLACK_S = numberSetting("SLACK_S", 120, 0, 3600);

export const options: Options = {
  scenarios: {
    viewers: {
      executor: "per-vu-iterations",
      vus: BUILDS * VIEWERS_PER_BUILD,
      iterations: 1,
      maxDuration: `${START_DELAY_S + DURATION_S + SLACK_S + 30}s`,
    },
  },
  thresholds: viewerThresholds(),
  setupTimeout: `${Math.max(120, BUILDS)}s`,
};

export function setup(): StartedBuild[] {
  const prefix = slugPrefix();
  return Array.from({ length: BUILDS }, (_, i) =>
    startBuild(`${prefix}-${i}`, {
      linesPerSecond: RATE,
      durationSeconds: DURATION_S,
      startDelayMs: START_DELAY_S * 1000,
    }),
  );
}

export default async function (builds: StartedBuild[]): Promise<void> {
  const viewer = exec.vu.idInTest - 1;
  const build = builds[Math.floor(viewer / VIEWERS_PER_BUILD) % builds.length]!;

  await followChannel({
    relayUrl: relayUrl(),
    channel: build.channel,
    buildId: build.buildId,
    token: viewerToken(),
    maxDurationMs: (START_DELAY_S + DURATION_S + SLACK_S) * 1000,
    latencyEvery: numberSetting("LATENCY_EVERY", 1, 1, 1_000_000),
  });
}
