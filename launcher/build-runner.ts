/**
 * What runs a build: the local runner (a `bin/builder` child process) or the
 * ECS runner (a Fargate task). Both take a BuildSpec and report how the
 * build goes through the BuildEvents they were made with.
 */
import type { Slug } from "../shared/channel-name.ts";
import type { BuildId } from "../shared/wire.ts";
import type { RunnerName } from "./config.ts";
import type { BuildRecord } from "./build-record.ts";

/** One build as a runner sees it. */
export interface BuildSpec {
  buildId: BuildId;
  slug: Slug;
  gitUrl: string;
  ref: string | undefined;
  startDir: string | undefined;
  installCommand: string | undefined;
  buildCommand: string | undefined;
}

/** Reports from a runner. Each build ends exactly once. */
export interface BuildEvents {
  started(buildId: BuildId, startedAt: number): void;
  /** `exitCode` is null when the builder never ran or left no code. */
  ended(buildId: BuildId, exitCode: number | null, endedAt: number): void;
}

export interface LaunchResult {
  status: "queued" | "running";
  /** The ECS task, for an `ecs` build. */
  taskArn?: string;
}

/** A fresh look at a build, taken from where it runs. */
export interface BuildObservation {
  status: "queued" | "running" | "ended";
  startedAt?: number;
  endedAt?: number;
  exitCode?: number | null;
}

export interface BuildRunner {
  readonly name: RunnerName;

  /**
   * Starts a build or queues it. Throws a LauncherError when the build
   * cannot start at all; it then reports no events for it.
   */
  launch(spec: BuildSpec): Promise<LaunchResult>;

  /**
   * Looks at a build that has not ended, wherever it was launched from.
   * Undefined when this runner cannot see it from here (a local build of
   * another launcher) or the look failed; the stored record then stands.
   */
  observe(record: BuildRecord): Promise<BuildObservation | undefined>;

  /** Builds running and queued here now. */
  counts(): { queued: number; running: number };

  /** Refuses new builds from now on, without waiting. */
  stopAccepting(): void;

  /**
   * Waits up to `graceMs` for running builds, then stops what is left and
   * releases timers and clients. Builds still queued end as failed.
   */
  close(graceMs: number): Promise<void>;
}
