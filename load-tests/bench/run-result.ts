/**
 * What one run (a scenario against one contender) measured. These objects
 * are the benchmark's JSON output, unchanged.
 */
import type { ViewerForm } from "./light-viewer.ts";
import type { SystemKind } from "./system-under-test.ts";

export interface LatencySummary {
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** One of our counts against the same count on the relays' /metrics. */
export interface CrossCheck {
  what: string;
  /** The relays' /metrics series it is checked against. */
  metric: string;
  ours: number;
  relays: number;
  match: boolean;
}

interface RunBase {
  scenario: string;
  contender: string;
  system: SystemKind;
  form: ViewerForm;
  nodes: number;
  viewers: number;
  /** Viewers that could not connect and subscribe. */
  viewersFailed: number;
  crossChecks: CrossCheck[];
  /** Why the run failed, when it did; its figures are then partial. */
  error?: string;
}

export interface LoadResult extends RunBase {
  kind: "load";
  /** The scenario's purpose (bench-scenarios.ts). */
  measures: "throughput" | "latency";
  builds: number;
  durationMs: number;
  linesPublished: number;
  linesDelivered: number;
  /** From the first line published to the last frame received. */
  windowMs: number;
  linesPerSecond: number;
  framesPerSecond: number;
  bytesPerSecond: number;
  latency: LatencySummary;
  /** Lines skipped in a viewer's stream: never coming. */
  lost: number;
  /**
   * Lines still missing when the drain ended: late, not skipped. A system
   * that cannot keep up with the offered load leaves these.
   */
  undelivered: number;
  duplicates: number;
  gapNotices: number;
  /** Viewers that lost their connection and could not get back. */
  disconnected: number;
  /**
   * Connections that ended after subscribing and were opened again (ours
   * closes a viewer that falls too far behind; it resumes).
   */
  reconnects: number;
  /**
   * Ours only: times a relay moved a viewer that fell behind to catch-up,
   * and the line deliveries it made from there (relay/channel-feed.ts).
   */
  heldBack?: number;
  caughtUpLines?: number;
  /**
   * Ours only: times a feed let the event loop run mid-delivery, and lines
   * it dropped from its queue to read back from history (channel-feed.ts).
   */
  deliveryYields?: number;
  shedLines?: number;
  /** Viewers that got every line by the end of the drain. */
  viewersComplete: number;
  serverCpuSeconds: number;
  serverCpuSecondsPerMillionLines: number;
  /**
   * CPU of the viewer processes and of Valkey over the run, in seconds: on
   * a machine this small, viewers near the cores' limit mean the load
   * generator, not the system, set the pace.
   */
  viewerCpuSeconds: number;
  valkeyCpuSeconds: number;
  /** Server RSS growth from before the viewers to the end, per viewer. */
  serverRssPerViewerBytes: number;
  valkeyCommandsPerLineDelivered: number;
  /** Valkey's calls per command during the run (scripts' inner calls too). */
  valkeyCalls: Record<string, number>;
  valkeyOutputBytesPerLineDelivered: number;
  /** Pub/sub messages Valkey pushed to the servers, per line published. */
  pubsubMessagesPerLinePublished: number;
  /** The same, per line delivered to a viewer. */
  pubsubMessagesPerLineDelivered: number;
  /** Mean nodes with viewers per channel, from the viewers' placement. */
  nodesWithViewersPerChannel: number;
  /** Mean nodes Valkey pushed each channel's traffic to. */
  nodesReceivingPerChannel: number;
  /** Mean subscribers of each log channel (PUBSUB NUMSUB). */
  logChannelSubscribers: number;
}

export interface IdleResult extends RunBase {
  kind: "idle";
  channels: number;
  serverRssBeforeBytes: number;
  /** After the first fifth of the viewers. */
  serverRssWarmBytes: number;
  serverRssAfterBytes: number;
  /** RSS growth from no viewer to all of them, per viewer. */
  rssPerViewerBytes: number;
  /** RSS growth from the first fifth to all of them, per viewer added. */
  rssPerAddedViewerBytes: number;
  /** Ours only: growth of the relay's used JS heap, per viewer. */
  heapPerViewerBytes?: number;
  /** Server CPU while the viewers sat idle, in percent of one core. */
  idleCpuPercent: number;
}

export interface StormResult extends RunBase {
  kind: "storm";
  concurrency: number;
  /** Viewers subscribed per second, first open to last acknowledgement. */
  readyPerSecond: number;
  readyLatency: LatencySummary;
  serverCpuSeconds: number;
}

export type RunResult = LoadResult | IdleResult | StormResult;

/** Loss, duplicates, failed viewers or a count mismatch: the run is wrong. */
export function runProblems(result: RunResult): string[] {
  const problems: string[] = [];
  if (result.error) problems.push(result.error);
  if (result.viewersFailed > 0) {
    problems.push(`${result.viewersFailed} viewers could not subscribe`);
  }
  if (result.kind === "load") {
    if (result.lost > 0) problems.push(`${result.lost} lines lost`);
    if (result.undelivered > 0) {
      problems.push(`${result.undelivered} lines not delivered by the end`);
    }
    if (result.duplicates > 0) {
      problems.push(`${result.duplicates} lines duplicated`);
    }
    if (result.disconnected > 0) {
      problems.push(`${result.disconnected} viewers disconnected`);
    }
  }
  for (const check of result.crossChecks) {
    if (!check.match) {
      problems.push(
        `${check.what}: counted ${check.ours}, relays say ${check.relays}`,
      );
    }
  }
  return problems;
}
