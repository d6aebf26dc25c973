/**
 * The storm run: as many viewers as the scenario says open a connection,
 * connect with a token, subscribe and wait for the answer, `concurrency`
 * of them in flight at any moment, and the rate at which they become
 * ready-and-subscribed is measured.
 */
import type { Contender, StormScenario } from "./bench-scenarios.ts";
import { summarize, type RunOptions } from "./load-run.ts";
import { sampleProcesses } from "./process-stats.ts";
import { RunHarness, delay } from "./run-harness.ts";
import type { CrossCheck, StormResult } from "./run-result.ts";

const WARM_UP_MS = 1_000;
/** Viewers of one channel; a storm spreads over many channels. */
const VIEWERS_PER_CHANNEL = 50;

export async function runStorm(
  scenario: StormScenario,
  contender: Contender,
  options: RunOptions,
): Promise<StormResult> {
  const harness = await RunHarness.start({
    contender,
    nodes: scenario.nodes,
    viewers: scenario.connections,
    relayEnv: options.relayEnv,
    logDir: options.logDir,
    withPublisher: false,
  });

  try {
    await delay(WARM_UP_MS);
    const channels = Math.ceil(scenario.connections / VIEWERS_PER_CHANNEL);
    const viewers = Array.from({ length: channels }, (_, i) =>
      harness.viewersOf(
        `${scenario.name}-${i}`,
        VIEWERS_PER_CHANNEL,
        contender.form,
        "hashed",
      ),
    )
      .flat()
      .slice(0, scenario.connections);

    const before = sampleProcesses(harness.system.pids);
    const connect = await harness.fleet.connect(viewers, scenario.concurrency);
    const after = sampleProcesses(harness.system.pids);
    harness.system.assertRunning();
    options.log(`  ${connect.ready} viewers subscribed`);

    const crossChecks: CrossCheck[] = [];
    if (contender.system === "ours") {
      const relay = await harness.system.relayTotals([
        "relay_connected_clients",
      ]);
      crossChecks.push({
        what: "viewers connected",
        metric: "relay_connected_clients",
        ours: connect.ready,
        relays: relay.relay_connected_clients!,
        match: connect.ready === relay.relay_connected_clients,
      });
    }

    return {
      kind: "storm",
      scenario: scenario.name,
      contender: contender.name,
      system: contender.system,
      form: contender.form,
      nodes: scenario.nodes,
      viewers: viewers.length,
      viewersFailed: connect.failed,
      crossChecks,
      concurrency: scenario.concurrency,
      readyPerSecond: connect.readyPerSecond,
      readyLatency: summarize(connect.readyLatency),
      serverCpuSeconds: after.cpuSeconds - before.cpuSeconds,
    };
  } finally {
    await harness.stop();
  }
}
