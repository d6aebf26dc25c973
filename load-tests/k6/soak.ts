/**
 * k6 scenario `soak`: moderate load for a long time, watching the relays
 * for growth.
 *
 * - `launch`: keeps `SLUGS` slugs building back to back, each build
 *   printing `RATE` lines a second for `BUILD_MINUTES`.
 * - `follow`: `VIEWERS` viewers, each following a slug's latest build for
 *   `SESSION_S` seconds, then leaving and coming back (churn), checking
 *   seq continuity within every session.
 * - `watch`: every `WATCH_INTERVAL_S`, each relay's /metrics
 *   (`METRICS_URLS`, comma-separated: the relays themselves, not the load
 *   balancer) is read; after `WARMUP_MINUTES` its RSS must not grow by
 *   more than `MAX_RSS_GROWTH_MB`.
 *
 * Runs for `DURATION` (a k6 duration such as `2h`).
 */
import exec from "k6/execution";
import type { Options } from "k6/options";
import { startBuild } from "./build-starter.ts";
import {
  numberSetting,
  relayUrl,
  slugPrefix,
  textSetting,
  viewerToken,
} from "./k6-settings.ts";
import { followChannel } from "./log-viewer.ts";
import {
  relayEventLoopLagP99,
  relayHeapUsedBytes,
  relayRssBytes,
  relayRssGrowthBytes,
  relayViewers,
  sampleRelay,
} from "./relay-watch.ts";
import { viewerThresholds } from "./viewer-metrics.ts";

const DURATION = textSetting("DURATION", "2h");
const VIEWERS = numberSetting("VIEWERS", 200, 1, 100_000);
const SLUGS = numberSetting("SLUGS", 10, 1, 10_000);
const RATE = numberSetting("RATE", 50, 1, 100_000);
const BUILD_MINUTES = numberSetting("BUILD_MINUTES", 10, 1, 1440);
const SESSION_S = numberSetting("SESSION_S", 300, 10, 86_400);
const WATCH_INTERVAL_S = numberSetting("WATCH_INTERVAL_S", 30, 1, 3600);
const WARMUP_MINUTES = numberSetting("WARMUP_MINUTES", 10, 0, 1440);
const MAX_RSS_GROWTH_MB = numberSetting("MAX_RSS_GROWTH_MB", 50, 1, 100_000);
const METRICS_URLS = textSetting("METRICS_URLS", `${relayUrl()}/metrics`)
  .split(",")
  .filter((url) => url !== "");

const { lines_lost, lines_duplicated, subscribe_refused } = viewerThresholds();

export const options: Options = {
  scenarios: {
    launch: {
      executor: "constant-arrival-rate",
      exec: "launch",
      rate: SLUGS,
      timeUnit: `${BUILD_MINUTES}m`,
      duration: DURATION,
      preAllocatedVUs: 2,
      maxVUs: 10,
    },
    follow: {
      executor: "constant-vus",
      exec: "follow",
      vus: VIEWERS,
      duration: DURATION,
      startTime: "10s",
    },
    watch: {
      executor: "constant-arrival-rate",
      exec: "watch",
      rate: 1,
      timeUnit: `${WATCH_INTERVAL_S}s`,
      duration: DURATION,
      preAllocatedVUs: 1,
      maxVUs: 1,
    },
  },
  thresholds: {
    lines_lost: lines_lost!,
    lines_duplicated: lines_duplicated!,
    subscribe_refused: subscribe_refused!,
    relay_rss_growth_bytes: [`max<${MAX_RSS_GROWTH_MB * 1024 * 1024}`],
  },
};

interface SoakData {
  /** Chosen once in setup, so every VU names the same slugs. */
  prefix: string;
}

export function setup(): SoakData {
  return { prefix: slugPrefix() };
}

const slugOf = (data: SoakData, i: number): string =>
  `${data.prefix}-soak-${i % SLUGS}`;

export function launch(data: SoakData): void {
  startBuild(slugOf(data, exec.scenario.iterationInTest), {
    linesPerSecond: RATE,
    durationSeconds: BUILD_MINUTES * 60,
    startDelayMs: 0,
  });
}

export async function follow(data: SoakData): Promise<void> {
  await followChannel({
    relayUrl: relayUrl(),
    channel: `logs:${slugOf(data, exec.vu.idInTest)}`,
    token: viewerToken(),
    maxDurationMs: SESSION_S * 1000,
    untilStatus: false,
    latencyEvery: numberSetting("LATENCY_EVERY", 10, 1, 1_000_000),
  });
}

/** RSS of each relay at the end of the warm-up, by URL. */
const settledRss = new Map<string, number>();

export function watch(): void {
  const warm = Date.now() - exec.scenario.startTime >= WARMUP_MINUTES * 60_000;

  METRICS_URLS.forEach((url, node) => {
    const sample = sampleRelay(url);
    if (sample === undefined) return;
    const tags = { node: String(node) };
    relayRssBytes.add(sample.rssBytes, tags);
    relayHeapUsedBytes.add(sample.heapUsedBytes, tags);
    relayViewers.add(sample.viewers, tags);
    relayEventLoopLagP99.add(sample.eventLoopLagP99Ms, tags);

    if (!warm) return;
    const base = settledRss.get(url);
    if (base === undefined) settledRss.set(url, sample.rssBytes);
    else relayRssGrowthBytes.add(sample.rssBytes - base, tags);
  });
}
