/**
 * k6 scenario `viewers`: N viewers of one busy build.
 *
 * `setup` starts one synthetic build through the launcher, printing
 * `RATE` lines a second for `DURATION_S` seconds after a `START_DELAY_S`
 * that lets the viewers join first. Each VU is one viewer following that
 * build to its status, checking that seq is continuous, and recording
 * delivery latency from each line's `ts`. Thresholds: p99 latency under
 * `P99_MS` and no line lost, duplicated or unfinished.
 *
 *     k6 run -e RELAY_URL=https://logs.staging.example.com \
 *            -e LAUNCHER_URL=https://launcher.staging.example.com \
 *            -e GIT_URL=https://git.example.com/codebay/log-relay.git \
 *            -e VIEWERS=1000 -e RATE=2000 load-tests/k6/viewers.ts
 */
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

const VIEWERS = numberSetting("VIEWERS", 100, 1, 100_000);
const RATE = numberSetting("RATE", 2000, 1, 100_000);
const DURATION_S = numberSetting("DURATION_S", 60, 1, 86_400);
const START_DELAY_S = numberSetting("START_DELAY_S", 20, 0, 3600);
/** Time for the build to start and for its last lines to arrive. */
const SLACK_S = numberSetting("SLACK_S", 60, 0, 3600);

export const options: Options = {
  scenarios: {
    viewers: {
      executor: "per-vu-iterations",
      vus: VIEWERS,
      iterations: 1,
      maxDuration: `${START_DELAY_S + DURATION_S + SLACK_S + 30}s`,
    },
  },
  thresholds: viewerThresholds(),
  setupTimeout: "120s",
};

export function setup(): StartedBuild {
  return startBuild(`${slugPrefix()}-viewers`, {
    linesPerSecond: RATE,
    durationSeconds: DURATION_S,
    startDelayMs: START_DELAY_S * 1000,
  });
}

export default async function (build: StartedBuild): Promise<void> {
  await followChannel({
    relayUrl: relayUrl(),
    channel: build.channel,
    buildId: build.buildId,
    token: viewerToken(),
    maxDurationMs: (START_DELAY_S + DURATION_S + SLACK_S) * 1000,
    latencyEvery: numberSetting("LATENCY_EVERY", 10, 1, 1_000_000),
  });
}
