/**
 * The idle run: many subscribed viewers of quiet channels on one node, and
 * what they cost the node in memory (and CPU while nothing happens).
 *
 * Memory per viewer is measured two ways, each after a quiet `settleMs`:
 * the node's RSS growth from before the first viewer to after the last,
 * divided by the viewers, and the growth from a first fifth of them to
 * all of them, divided by the rest. Both include everything a viewer
 * costs: the socket, the Socket.IO session, room membership, buffers. The
 * first also carries what the node spends once, on its first connections
 * (compiled code, pools), and whatever garbage start-up left in the heap
 * when it was sampled, which moves it by about a kilobyte per viewer from
 * one run to the next at 10,000 viewers; the second is the cost of one
 * more viewer.
 */
import type { Contender, IdleScenario } from "./bench-scenarios.ts";
import { BenchError, BenchErrorCode } from "./bench-errors.ts";
import type { RunOptions } from "./load-run.ts";
import { sampleProcesses } from "./process-stats.ts";
import type { LightViewerOptions } from "./light-viewer.ts";
import { RunHarness, delay } from "./run-harness.ts";
import type { CrossCheck, IdleResult } from "./run-result.ts";

const CONNECT_CONCURRENCY = 500;
/** The share of the viewers connected before the second sample. */
const WARM_SHARE = 0.2;
const HEAP_USED = "relay_nodejs_heap_size_used_bytes";
/** Lets the node finish starting (JIT, first GCs) before the first sample. */
const WARM_UP_MS = 1_000;

export async function runIdle(
  scenario: IdleScenario,
  contender: Contender,
  options: RunOptions,
): Promise<IdleResult> {
  const harness = await RunHarness.start({
    contender,
    nodes: scenario.nodes,
    viewers: scenario.viewers,
    relayEnv: options.relayEnv,
    logDir: options.logDir,
    withPublisher: false,
  });

  try {
    await delay(WARM_UP_MS);
    const before = sampleProcesses(harness.system.pids);
    const heapBefore = await harness.system.relayTotals([HEAP_USED]);

    const perChannel = Math.ceil(scenario.viewers / scenario.channels);
    const slugs = Array.from(
      { length: scenario.channels },
      (_, i) => `${scenario.name}-${i}`,
    );
    const viewers = slugs
      .flatMap((slug) =>
        harness.viewersOf(slug, perChannel, contender.form, "even"),
      )
      .slice(0, scenario.viewers);

    // Every fifth viewer first: every channel has viewers by the second
    // sample, so what comes after adds viewers only, not channels.
    const every = Math.round(1 / WARM_SHARE);
    const first = viewers.filter((_, i) => i % every === 0);
    const rest = viewers.filter((_, i) => i % every !== 0);

    await connectAll(harness, first);
    await harness.settle(slugs);
    await delay(scenario.settleMs);
    const warm = sampleProcesses(harness.system.pids);

    await connectAll(harness, rest);
    await harness.settle(slugs);
    options.log(`  ${viewers.length} viewers subscribed; waiting`);

    const quietFrom = sampleProcesses(harness.system.pids);
    await delay(scenario.settleMs);
    const after = sampleProcesses(harness.system.pids);
    harness.system.assertRunning();

    const crossChecks: CrossCheck[] = [];
    const relay = await harness.system.relayTotals([
      "relay_connected_clients",
      "relay_process_resident_memory_bytes",
      HEAP_USED,
    ]);
    if (contender.system === "ours") {
      crossChecks.push({
        what: "viewers connected",
        metric: "relay_connected_clients",
        ours: viewers.length,
        relays: relay.relay_connected_clients!,
        match: viewers.length === relay.relay_connected_clients,
      });
      // Sampled a moment apart, so equal within 5 %.
      const reported = relay.relay_process_resident_memory_bytes!;
      crossChecks.push({
        what: "relay RSS, /proc against the relay's own gauge",
        metric: "relay_process_resident_memory_bytes",
        ours: after.rssBytes,
        relays: reported,
        match: Math.abs(after.rssBytes - reported) <= 0.05 * reported,
      });
    }

    return {
      kind: "idle",
      scenario: scenario.name,
      contender: contender.name,
      system: contender.system,
      form: contender.form,
      nodes: scenario.nodes,
      viewers: viewers.length,
      viewersFailed: 0,
      crossChecks,
      channels: scenario.channels,
      serverRssBeforeBytes: before.rssBytes,
      serverRssAfterBytes: after.rssBytes,
      serverRssWarmBytes: warm.rssBytes,
      rssPerViewerBytes: (after.rssBytes - before.rssBytes) / viewers.length,
      rssPerAddedViewerBytes: (after.rssBytes - warm.rssBytes) / rest.length,
      heapPerViewerBytes:
        contender.system === "ours"
          ? (relay[HEAP_USED]! - heapBefore[HEAP_USED]!) / viewers.length
          : undefined,
      idleCpuPercent:
        ((after.cpuSeconds - quietFrom.cpuSeconds) * 100_000) /
        scenario.settleMs,
    };
  } finally {
    await harness.stop();
  }
}

/** Opens the viewers; every one of them must subscribe. */
async function connectAll(
  harness: RunHarness,
  viewers: LightViewerOptions[],
): Promise<void> {
  const connect = await harness.fleet.connect(viewers, CONNECT_CONCURRENCY);
  if (connect.failed > 0) {
    throw new BenchError(
      BenchErrorCode.VIEWERS_NOT_READY,
      `${connect.failed} viewers failed: ${connect.reasons.join("; ")}`,
    );
  }
}
