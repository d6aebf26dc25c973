/**
 * Runs builds on this machine: each one is a `bin/builder` child process,
 * with the build described in its environment. At most
 * `maxConcurrentBuilds` run at once; the rest wait in order as `queued`.
 *
 * Build scripts run as the launcher's user, on its machine, with only the
 * isolation a child process has: this runner is meant for development and
 * single-tenant setups, where the code being built is trusted.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Logger } from "../shared/logger.ts";
import type { BuildId } from "../shared/wire.ts";
import type { BuildRecord } from "./build-record.ts";
import type {
  BuildEvents,
  BuildObservation,
  BuildRunner,
  BuildSpec,
  LaunchResult,
} from "./build-runner.ts";
import { builderEnv } from "./builder-env.ts";
import type { LogLevel } from "./config.ts";
import { DrainingError } from "./errors.ts";

/** The executable every local build runs. */
export const BUILDER_PATH = fileURLToPath(
  new URL("../bin/builder", import.meta.url),
);

/** After the grace period, how long a SIGTERMed builder has before SIGKILL. */
export const KILL_AFTER_MS = 5000;

export interface LocalRunnerOptions {
  maxConcurrentBuilds: number;
  /** Handed to builders as REDIS_URL. */
  valkeyUrl: string;
  /** Handed to builders as LOG_LEVEL. */
  logLevel: LogLevel;
  /** Variables builders inherit, such as PATH. */
  inheritedEnv: Readonly<Record<string, string>>;
  events: BuildEvents;
  logger: Logger;
}

export class LocalRunner implements BuildRunner {
  readonly name = "local";
  private readonly queue: BuildSpec[] = [];
  private readonly children = new Map<BuildId, ChildProcess>();
  private readonly exits = new Map<BuildId, Promise<void>>();
  private accepting = true;

  constructor(private readonly options: LocalRunnerOptions) {}

  async launch(spec: BuildSpec): Promise<LaunchResult> {
    if (!this.accepting) throw new DrainingError();

    if (this.children.size < this.options.maxConcurrentBuilds) {
      this.start(spec);
      return { status: "running" };
    }

    this.queue.push(spec);
    return { status: "queued" };
  }

  /** Local builds of this launcher are reported as they happen. */
  async observe(_record: BuildRecord): Promise<BuildObservation | undefined> {
    return undefined;
  }

  counts(): { queued: number; running: number } {
    return { queued: this.queue.length, running: this.children.size };
  }

  stopAccepting(): void {
    this.accepting = false;
  }

  async close(graceMs: number): Promise<void> {
    this.stopAccepting();
    const logger = this.options.logger;

    // A queued build would start after the launcher is gone.
    for (const spec of this.queue.splice(0)) {
      this.options.events.ended(spec.buildId, null, Date.now());
    }
    if (this.children.size === 0) return;

    logger.info(
      { running: this.children.size, graceMs },
      "waiting for local builds",
    );
    const allExited = Promise.all(this.exits.values());
    if (await finishesWithin(allExited, graceMs)) return;

    logger.warn(
      { running: this.children.size },
      "grace period over, stopping local builds",
    );
    // The builder alone gets SIGTERM, so it can stop its step and publish
    // the build's end; SIGKILL goes to its whole group.
    for (const child of this.children.values()) child.kill("SIGTERM");
    if (await finishesWithin(allExited, KILL_AFTER_MS)) return;

    for (const child of this.children.values()) killGroup(child);
    await allExited;
  }

  private start(spec: BuildSpec): void {
    const { inheritedEnv, valkeyUrl, logLevel, events } = this.options;
    const logger = this.options.logger.child({ buildId: spec.buildId });

    // In a process group of its own, so that a terminal's Ctrl-C reaches
    // the launcher alone (which then drains), and a final SIGKILL reaches
    // whatever the builder left running.
    const child = spawn(process.execPath, [BUILDER_PATH], {
      env: { ...inheritedEnv, ...builderEnv(spec, valkeyUrl, logLevel) },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.children.set(spec.buildId, child);
    events.started(spec.buildId, Date.now());
    logger.debug({ pid: child.pid }, "builder spawned");

    // The builder publishes the build's own output to Valkey; what it prints
    // here is its own log, kept at debug.
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream].on("error", (err) => {
        logger.debug({ err, stream }, "builder output unreadable");
      });
      createInterface({ input: child[stream] }).on("line", (line) => {
        logger.debug({ stream, line }, "builder output");
      });
    }

    const exited = new Promise<void>((resolve) => {
      const finish = (exitCode: number | null) => {
        if (!this.children.delete(spec.buildId)) return;
        this.exits.delete(spec.buildId);

        logger.debug({ exitCode }, "builder exited");
        events.ended(spec.buildId, exitCode, Date.now());
        resolve();
        this.startNext();
      };

      child.on("error", (err) => {
        logger.error({ err }, "builder process failed");
        // Without a pid the process never started, and no close follows.
        if (child.pid === undefined) finish(null);
      });
      child.on("close", (code, signal) => {
        finish(code ?? (signal ? 128 + constants.signals[signal] : null));
      });
    });
    this.exits.set(spec.buildId, exited);
  }

  private startNext(): void {
    if (!this.accepting) return;

    const next = this.queue.shift();
    if (next) this.start(next);
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;

  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // The group is already gone; the close event follows.
  }
}

/** True when `promise` settles within `ms`; the timer never outlives it. */
async function finishesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });

  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
