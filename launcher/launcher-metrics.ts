/**
 * The launcher's Prometheus metrics, in a registry of its own so that two
 * launchers in one process (as in tests) count apart. Labels are bounded
 * sets; no slug or build id is ever a label.
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `launcher_builds_started_total` | counter | `runner`, `outcome`: running, queued, failed |
 * | `launcher_run_task_duration_seconds` | histogram | - |
 * | `launcher_run_task_failures_total` | counter | `reason`: see EcsRunner's reasonLabel |
 * | `launcher_builds` | gauge | `state`: queued, running (builds of this launcher) |
 * | `launcher_process_*`, `launcher_nodejs_*` | prom-client defaults | |
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
} from "prom-client";
import type { RunnerName } from "./config.ts";

export type StartOutcome = "running" | "queued" | "failed";

export class LauncherMetrics {
  readonly registry = new Registry();
  private readonly buildsStarted: Counter<"runner" | "outcome">;
  private readonly runTaskDuration: Histogram;
  private readonly runTaskFailures: Counter<"reason">;
  private counts = () => ({ queued: 0, running: 0 });

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "launcher_" });

    this.buildsStarted = new Counter({
      name: "launcher_builds_started_total",
      help: "Builds asked for, by runner and what became of the request",
      labelNames: ["runner", "outcome"],
      registers,
    });
    this.runTaskDuration = new Histogram({
      name: "launcher_run_task_duration_seconds",
      help: "Time ECS RunTask took to answer, retries included",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.runTaskFailures = new Counter({
      name: "launcher_run_task_failures_total",
      help: "RunTask calls that started no task, by reason",
      labelNames: ["reason"],
      registers,
    });
    const current = () => this.counts();
    new Gauge({
      name: "launcher_builds",
      help: "Builds this launcher has queued or running now",
      labelNames: ["state"],
      registers,
      collect() {
        const now = current();
        this.set({ state: "queued" }, now.queued);
        this.set({ state: "running" }, now.running);
      },
    });
  }

  /** Where the `launcher_builds` gauge reads its numbers from. */
  countBuildsWith(counts: () => { queued: number; running: number }): void {
    this.counts = counts;
  }

  buildStarted(runner: RunnerName, outcome: StartOutcome): void {
    this.buildsStarted.inc({ runner, outcome });
  }

  runTaskTook(seconds: number): void {
    this.runTaskDuration.observe(seconds);
  }

  runTaskFailed(reason: string): void {
    this.runTaskFailures.inc({ reason });
  }

  /** The text exposition and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return {
      contentType: this.registry.contentType,
      body: await this.registry.metrics(),
    };
  }
}
