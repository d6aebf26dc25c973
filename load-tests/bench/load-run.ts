/**
 * A run with traffic (fan-out, many builds): viewers subscribe, builds
 * publish at their rate for the scenario's duration, viewers catch up, and
 * every figure is taken from before and after.
 *
 * Throughput is lines delivered over the time from the first line
 * published to the last frame received: a system that keeps up shows the
 * offered load, one that falls behind shows what it managed, drain
 * included.
 */
import type { ExpectedEnds } from "./fleet-messages.ts";
import type { Contender, LoadScenario } from "./bench-scenarios.ts";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";
import { sampleProcesses } from "./process-stats.ts";
import { RunHarness, delay } from "./run-harness.ts";
import type { CrossCheck, LatencySummary, LoadResult } from "./run-result.ts";
import { logChannel } from "./system-under-test.ts";
import { meanNumsub, sampleValkey, valkeyDelta } from "./valkey-stats.ts";
import type { LatencyHistogram } from "./latency-histogram.ts";

const PROGRESS_INTERVAL_MS = 250;
/** Drain gives up early when nothing new arrives for this long. */
const STALL_MS = 5_000;
const CONNECT_CONCURRENCY = 200;

const RELAY_SERIES = [
  "relay_lines_delivered_total",
  "relay_lines_received_total",
  "relay_connected_clients",
  "relay_disconnects_total",
  "relay_viewers_held_back_total",
  "relay_caught_up_lines_total",
  "relay_delivery_yields_total",
  "relay_feed_shed_lines_total",
];

export interface RunOptions {
  log(message: string): void;
  relayEnv?: Record<string, string>;
  /** Keep the servers' output here, one file per process. */
  logDir?: string;
  /** Distinguishes the build ids of runs in one benchmark. */
  runId: string;
}

export async function runLoad(
  scenario: LoadScenario,
  contender: Contender,
  options: RunOptions,
): Promise<LoadResult> {
  const viewerCount = scenario.builds * scenario.viewersPerBuild;
  const harness = await RunHarness.start({
    contender,
    nodes: scenario.nodes,
    viewers: viewerCount,
    relayEnv: options.relayEnv,
    logDir: options.logDir,
    withPublisher: true,
  });

  try {
    return await measure(harness, scenario, contender, options);
  } finally {
    await harness.stop();
  }
}

async function measure(
  harness: RunHarness,
  scenario: LoadScenario,
  contender: Contender,
  options: RunOptions,
): Promise<LoadResult> {
  const { system, fleet, client } = harness;
  const builds = Array.from({ length: scenario.builds }, (_, i) => ({
    slug: `${scenario.name}-${i}`,
    buildId: `${options.runId}-${contender.name}-${i}`,
  }));
  const slugs = builds.map((b) => b.slug);
  const spread = scenario.builds === 1 ? "even" : "hashed";
  const viewers = slugs.flatMap((slug) =>
    harness.viewersOf(slug, scenario.viewersPerBuild, contender.form, spread),
  );

  const idle = sampleProcesses(system.pids);
  const connect = await fleet.connect(viewers, CONNECT_CONCURRENCY);
  if (connect.failed > 0) {
    throw new BenchError(
      BenchErrorCode.VIEWERS_NOT_READY,
      `${connect.failed} viewers failed: ${connect.reasons.join("; ")}`,
    );
  }
  await harness.settle(slugs);
  options.log(`  ${connect.ready} viewers subscribed; publishing`);

  const before = {
    process: sampleProcesses(system.pids),
    viewers: sampleProcesses(fleet.pids),
    valkeyProcess: sampleProcesses([harness.valkey.pid ?? 0]),
    valkey: await sampleValkey(client),
    relay: await system.relayTotals(RELAY_SERIES),
  };

  const published = await harness.publisher!.run({
    valkeyUrl: harness.valkey.url,
    builds,
    linesPerSecondPerBuild: scenario.linesPerSecondPerBuild,
    durationMs: scenario.durationMs,
    seed: 1,
  });
  const expected: ExpectedEnds = {};
  for (const build of published.builds) {
    expected[logChannel(build.slug)] = {
      buildId: build.buildId,
      lastSeq: build.lastSeq,
    };
  }
  const linesPublished = published.builds.reduce((n, b) => n + b.lastSeq, 0);

  const viewersComplete = await drain(
    harness,
    expected,
    scenario,
    viewers.length,
  );
  system.assertRunning();

  const after = {
    process: sampleProcesses(system.pids),
    viewers: sampleProcesses(fleet.pids),
    valkeyProcess: sampleProcesses([harness.valkey.pid ?? 0]),
    valkey: await sampleValkey(client),
    relay: await system.relayTotals(RELAY_SERIES),
  };
  const report = await fleet.report(expected);
  const delta = valkeyDelta(before.valkey, after.valkey);
  const relayDelta = (name: string): number =>
    after.relay[name]! - before.relay[name]!;
  const ownerReads = relayDelta("relay_lines_received_total");
  const pubsub = await system.pubsubMessages({
    valkey: client,
    slugs,
    linesPublished,
    delta,
    ownerReads,
  });

  const delivered = report.counts.delivered;
  const windowMs = Math.max(1, report.lastFrameMs - published.startedAtMs);
  const cpuSeconds = after.process.cpuSeconds - before.process.cpuSeconds;
  const crossChecks =
    contender.system === "ours"
      ? relayCrossChecks(relayDelta, after.relay, {
          delivered,
          linesPublished,
          connected: connect.ready - report.disconnected,
          reconnects: report.reconnects,
        })
      : [];

  return {
    kind: "load",
    scenario: scenario.name,
    measures: scenario.measures,
    contender: contender.name,
    system: contender.system,
    form: contender.form,
    nodes: scenario.nodes,
    viewers: viewers.length,
    viewersFailed: connect.failed,
    crossChecks,
    builds: scenario.builds,
    durationMs: scenario.durationMs,
    linesPublished,
    linesDelivered: delivered,
    windowMs,
    linesPerSecond: (delivered * 1000) / windowMs,
    framesPerSecond: (report.frames * 1000) / windowMs,
    bytesPerSecond: (report.bytes * 1000) / windowMs,
    latency: summarize(report.latency),
    lost: report.counts.lost,
    undelivered: report.counts.undelivered,
    duplicates: report.counts.duplicates,
    gapNotices: report.counts.gapNotices,
    disconnected: report.disconnected,
    reconnects: report.reconnects,
    ...(contender.system === "ours"
      ? {
          heldBack: relayDelta("relay_viewers_held_back_total"),
          caughtUpLines: relayDelta("relay_caught_up_lines_total"),
          deliveryYields: relayDelta("relay_delivery_yields_total"),
          shedLines: relayDelta("relay_feed_shed_lines_total"),
        }
      : {}),
    viewersComplete,
    serverCpuSeconds: cpuSeconds,
    viewerCpuSeconds: after.viewers.cpuSeconds - before.viewers.cpuSeconds,
    valkeyCpuSeconds:
      after.valkeyProcess.cpuSeconds - before.valkeyProcess.cpuSeconds,
    serverCpuSecondsPerMillionLines:
      (cpuSeconds * 1e6) / Math.max(1, delivered),
    serverRssPerViewerBytes:
      (after.process.rssBytes - idle.rssBytes) / viewers.length,
    valkeyCommandsPerLineDelivered: delta.commands / Math.max(1, delivered),
    valkeyCalls: Object.fromEntries(
      Object.entries(delta.calls).filter(([, calls]) => calls > 0),
    ),
    valkeyOutputBytesPerLineDelivered:
      delta.netOutputBytes / Math.max(1, delivered),
    pubsubMessagesPerLinePublished:
      pubsub.messages / Math.max(1, linesPublished),
    pubsubMessagesPerLineDelivered: pubsub.messages / Math.max(1, delivered),
    nodesWithViewersPerChannel: nodesWithViewers(viewers),
    nodesReceivingPerChannel: pubsub.nodesReceivingPerChannel,
    logChannelSubscribers: await meanNumsub(client, slugs.map(logChannel)),
  };
}

/**
 * The benchmark's counts against the relays' /metrics deltas. Lines
 * delivered compare only when no viewer reconnected: a relay counts lines
 * handed to a connection it then closed, and resumed viewers get lines
 * from history, which it counts apart.
 */
function relayCrossChecks(
  delta: (name: string) => number,
  after: Record<string, number>,
  ours: {
    delivered: number;
    linesPublished: number;
    connected: number;
    reconnects: number;
  },
): CrossCheck[] {
  const checks: CrossCheck[] = [];
  const add = (what: string, metric: string, count: number, relays: number) =>
    checks.push({ what, metric, ours: count, relays, match: count === relays });

  if (ours.reconnects === 0) {
    add(
      "lines delivered to viewers",
      "relay_lines_delivered_total",
      ours.delivered,
      delta("relay_lines_delivered_total"),
    );
  }
  add(
    "lines read from Valkey by owners",
    "relay_lines_received_total",
    ours.linesPublished,
    delta("relay_lines_received_total"),
  );
  add(
    "viewers connected at the end",
    "relay_connected_clients",
    ours.connected,
    after.relay_connected_clients!,
  );
  add(
    "viewer connections that ended and were opened again",
    "relay_disconnects_total",
    ours.reconnects,
    delta("relay_disconnects_total"),
  );
  return checks;
}

/**
 * Waits until every viewer holds every line, the drain timeout passes, or
 * nothing new arrives for a while. Returns the viewers that are complete.
 */
async function drain(
  harness: RunHarness,
  expected: ExpectedEnds,
  scenario: LoadScenario,
  viewers: number,
): Promise<number> {
  const deadline = Date.now() + scenario.drainTimeoutMs;
  let lastDelivered = -1;
  let lastChangeMs = Date.now();

  for (;;) {
    const progress = await harness.fleet.progress(expected);
    if (progress.complete >= viewers) return progress.complete;

    const now = Date.now();
    if (progress.delivered !== lastDelivered) {
      lastDelivered = progress.delivered;
      lastChangeMs = now;
    }
    if (now > deadline || now - lastChangeMs > STALL_MS) {
      return progress.complete;
    }
    harness.system.assertRunning();
    await delay(PROGRESS_INTERVAL_MS);
  }
}

function nodesWithViewers(
  viewers: ReadonlyArray<{ url: string; channel: string }>,
): number {
  const nodes = new Map<string, Set<string>>();
  for (const viewer of viewers) {
    let set = nodes.get(viewer.channel);
    if (!set) {
      set = new Set();
      nodes.set(viewer.channel, set);
    }
    set.add(viewer.url);
  }
  let total = 0;
  for (const set of nodes.values()) total += set.size;
  return total / Math.max(1, nodes.size);
}

export function summarize(histogram: LatencyHistogram): LatencySummary {
  return {
    p50Ms: histogram.quantileMs(0.5),
    p95Ms: histogram.quantileMs(0.95),
    p99Ms: histogram.quantileMs(0.99),
    maxMs: histogram.maxMs,
  };
}
