/**
 * Runs every scenario against every contender, one run at a time so runs
 * do not share the machine, and gathers the results with the machine they
 * ran on. A run that fails is recorded with its error and the benchmark
 * goes on.
 */
import { cpus, loadavg, release, totalmem } from "node:os";
import {
  fullScenarios,
  quickScenarios,
  type Contender,
  type Scenario,
} from "./bench-scenarios.ts";
import { runIdle } from "./idle-run.ts";
import { runLoad, type RunOptions } from "./load-run.ts";
import type { RunResult } from "./run-result.ts";
import { runStorm } from "./storm-run.ts";

export interface BenchOptions {
  quick: boolean;
  /** Relay (and baseline, floor) processes where a scenario has a choice. */
  nodes: number;
  /** Scenario names to run; all when empty. */
  only: readonly string[];
  /** Contender names to run; all when empty. */
  contenders?: readonly string[];
  /** Replaces every load scenario's duration, to keep trial runs short. */
  durationMs?: number;
  /** Keep the servers' output here, one file per process. */
  logDir?: string;
  /** Extra variables for our relays, such as `BATCH_WINDOW_MS`. */
  relayEnv?: Record<string, string>;
  log(message: string): void;
}

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memoryBytes: number;
  kernel: string;
  node: string;
  /** 1-minute load average before and after: others' work skews results. */
  loadAverageBefore: number;
  loadAverageAfter: number;
}

export interface BenchReport {
  startedAt: string;
  quick: boolean;
  nodes: number;
  machine: MachineInfo;
  durationMs: number;
  results: RunResult[];
}

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const startedAtMs = Date.now();
  const loadAverageBefore = loadavg()[0]!;
  const scenarios = (
    options.quick ? quickScenarios(options.nodes) : fullScenarios(options.nodes)
  )
    .filter((s) => options.only.length === 0 || options.only.includes(s.name))
    .map((s) =>
      s.kind === "load" && options.durationMs !== undefined
        ? { ...s, durationMs: options.durationMs }
        : s,
    );
  const picked = (c: Contender): boolean =>
    !options.contenders?.length || options.contenders.includes(c.name);

  const results: RunResult[] = [];
  const runId = startedAtMs.toString(36);
  for (const scenario of scenarios) {
    for (const contender of scenario.contenders.filter(picked)) {
      options.log(`${scenario.name} / ${contender.name}`);
      const runOptions: RunOptions = {
        log: options.log,
        runId,
        logDir: options.logDir,
        relayEnv: options.relayEnv,
      };
      results.push(await runOne(scenario, contender, runOptions));
    }
  }

  const cpuList = cpus();
  return {
    startedAt: new Date(startedAtMs).toISOString(),
    quick: options.quick,
    nodes: options.nodes,
    machine: {
      cpuModel: cpuList[0]?.model ?? "unknown",
      cpus: cpuList.length,
      memoryBytes: totalmem(),
      kernel: release(),
      node: process.version,
      loadAverageBefore,
      loadAverageAfter: loadavg()[0]!,
    },
    durationMs: Date.now() - startedAtMs,
    results,
  };
}

async function runOne(
  scenario: Scenario,
  contender: Contender,
  options: RunOptions,
): Promise<RunResult> {
  try {
    switch (scenario.kind) {
      case "load":
        return await runLoad(scenario, contender, options);
      case "idle":
        return await runIdle(scenario, contender, options);
      case "storm":
        return await runStorm(scenario, contender, options);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    options.log(`  failed: ${message}`);
    return failedRun(scenario, contender, message);
  }
}

/** A run that did not complete: no figures, only why. */
function failedRun(
  scenario: Scenario,
  contender: Contender,
  error: string,
): RunResult {
  const base = {
    scenario: scenario.name,
    contender: contender.name,
    system: contender.system,
    form: contender.form,
    nodes: scenario.nodes,
    viewers: 0,
    viewersFailed: 0,
    crossChecks: [],
    error,
  };
  const latency = { p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 };

  switch (scenario.kind) {
    case "idle":
      return {
        ...base,
        kind: "idle",
        channels: scenario.channels,
        serverRssBeforeBytes: 0,
        serverRssWarmBytes: 0,
        serverRssAfterBytes: 0,
        rssPerViewerBytes: 0,
        rssPerAddedViewerBytes: 0,
        idleCpuPercent: 0,
      };
    case "storm":
      return {
        ...base,
        kind: "storm",
        concurrency: scenario.concurrency,
        readyPerSecond: 0,
        readyLatency: latency,
        serverCpuSeconds: 0,
      };
    case "load":
      return {
        ...base,
        kind: "load",
        measures: scenario.measures,
        builds: scenario.builds,
        durationMs: scenario.durationMs,
        linesPublished: 0,
        linesDelivered: 0,
        windowMs: 0,
        linesPerSecond: 0,
        framesPerSecond: 0,
        bytesPerSecond: 0,
        latency,
        lost: 0,
        undelivered: 0,
        duplicates: 0,
        gapNotices: 0,
        disconnected: 0,
        reconnects: 0,
        viewersComplete: 0,
        serverCpuSeconds: 0,
        serverCpuSecondsPerMillionLines: 0,
        viewerCpuSeconds: 0,
        valkeyCpuSeconds: 0,
        serverRssPerViewerBytes: 0,
        valkeyCommandsPerLineDelivered: 0,
        valkeyCalls: {},
        valkeyOutputBytesPerLineDelivered: 0,
        pubsubMessagesPerLinePublished: 0,
        pubsubMessagesPerLineDelivered: 0,
        nodesWithViewersPerChannel: 0,
        nodesReceivingPerChannel: 0,
        logChannelSubscribers: 0,
      };
  }
}
