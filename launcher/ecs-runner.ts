/**
 * Runs each build as an ECS Fargate task: one RunTask call, with the build's
 * environment as overrides of the builder container. How the task goes is
 * learnt by DescribeTasks, both on a timer for the tasks this launcher
 * started and whenever a record of an unfinished ECS build is read.
 *
 * RunTask is not retried blindly: the build id is its client token, so ECS
 * starts at most one task for a build however often the SDK retries.
 */
import {
  DescribeTasksCommand,
  ECSClient,
  RunTaskCommand,
  type ECSClientConfig,
  type Failure,
  type Task,
} from "@aws-sdk/client-ecs";
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
import type { EcsOptions, LogLevel } from "./config.ts";
import { DrainingError, EcsFailureError } from "./errors.ts";
import type { LauncherMetrics } from "./launcher-metrics.ts";

/** Shown in ECS as who started the task. */
export const STARTED_BY = "codebay-launcher";

/** DescribeTasks takes at most this many tasks per call. */
const DESCRIBE_BATCH = 100;

/**
 * ECS failure reasons that may be metric labels as they are; any other
 * becomes `other`. Calls that fail outright are `api_client` or `api_server`
 * (AWS answered with an error) or `unreachable` (no answer).
 */
export const KNOWN_FAILURE_REASONS = [
  "RESOURCE:CPU",
  "RESOURCE:MEMORY",
  "RESOURCE:ENI",
  "RESOURCE:GPU",
  "RESOURCE:PORTS",
  "AGENT",
  "ATTRIBUTE",
  "LOCATION",
  "MISSING",
  "INACTIVE",
] as const;

export interface EcsRunnerOptions {
  ecs: EcsOptions;
  /** Handed to builders as REDIS_URL. */
  valkeyUrl: string;
  /** Handed to builders as LOG_LEVEL. */
  logLevel: LogLevel;
  events: BuildEvents;
  metrics: LauncherMetrics;
  logger: Logger;
  /**
   * Fixed credentials, for a stand-in endpoint. Unset, the SDK's own chain
   * finds them (variables, profile, task or instance role).
   */
  credentials?: ECSClientConfig["credentials"];
}

/**
 * ECS is eventually consistent: DescribeTasks may not know a task for a
 * moment after RunTask answered. A task unknown for longer than this after
 * its launch is taken to be gone.
 */
export const MISSING_GRACE_MS = 60_000;

interface TrackedTask {
  taskArn: string;
  status: "queued" | "running";
  launchedAt: number;
}

export class EcsRunner implements BuildRunner {
  readonly name = "ecs";
  private readonly client: ECSClient;
  private readonly tracked = new Map<BuildId, TrackedTask>();
  private readonly timer: NodeJS.Timeout;
  private sweeping: Promise<void> | undefined;
  private accepting = true;

  constructor(private readonly options: EcsRunnerOptions) {
    const { ecs } = options;

    this.client = new ECSClient({
      region: ecs.region,
      endpoint: ecs.endpointUrl,
      maxAttempts: ecs.maxAttempts,
      credentials: options.credentials,
      requestHandler: {
        connectionTimeout: 5000,
        requestTimeout: 15_000,
        throwOnRequestTimeout: true,
      },
    });

    this.timer = setInterval(() => this.sweep(), ecs.pollIntervalMs);
    this.timer.unref();
  }

  async launch(spec: BuildSpec): Promise<LaunchResult> {
    if (!this.accepting) throw new DrainingError();

    const task = await this.runTask(spec);
    const taskArn = task.taskArn as string;
    const running = task.lastStatus === "RUNNING";

    this.tracked.set(spec.buildId, {
      taskArn,
      status: running ? "running" : "queued",
      launchedAt: Date.now(),
    });
    this.options.logger.info(
      { buildId: spec.buildId, taskArn },
      "ecs task started",
    );
    if (running) {
      this.options.events.started(
        spec.buildId,
        task.startedAt?.getTime() ?? Date.now(),
      );
    }

    return { status: running ? "running" : "queued", taskArn };
  }

  async observe(record: BuildRecord): Promise<BuildObservation | undefined> {
    if (record.taskArn === undefined) return undefined;

    try {
      const found = await this.describe([record.taskArn]);
      return found.get(record.taskArn) ?? missingObservation(record.createdAt);
    } catch (err) {
      this.options.logger.warn(
        { err, buildId: record.buildId },
        "ecs describe failed",
      );
      return undefined;
    }
  }

  counts(): { queued: number; running: number } {
    let queued = 0;
    for (const task of this.tracked.values()) {
      if (task.status === "queued") queued += 1;
    }
    return { queued, running: this.tracked.size - queued };
  }

  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Stops watching; the tasks themselves go on in ECS, and their records
   * are brought up to date by whichever launcher reads them next.
   */
  async close(_graceMs: number): Promise<void> {
    this.stopAccepting();
    clearInterval(this.timer);

    await this.sweeping;
    this.client.destroy();
  }

  private async runTask(spec: BuildSpec): Promise<Task> {
    const { ecs, metrics, valkeyUrl, logLevel } = this.options;
    const environment = Object.entries(
      builderEnv(spec, valkeyUrl, logLevel),
    ).map(([name, value]) => ({ name, value }));

    const command = new RunTaskCommand({
      cluster: ecs.cluster,
      taskDefinition: ecs.taskDefinition,
      launchType: "FARGATE",
      count: 1,
      clientToken: spec.buildId,
      startedBy: STARTED_BY,
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: [...ecs.subnets],
          securityGroups:
            ecs.securityGroups.length > 0 ? [...ecs.securityGroups] : undefined,
          assignPublicIp: ecs.assignPublicIp,
        },
      },
      overrides: {
        containerOverrides: [{ name: ecs.containerName, environment }],
      },
    });

    const startedAt = performance.now();
    const tookSeconds = () => (performance.now() - startedAt) / 1000;
    let output;
    try {
      output = await this.client.send(command);
    } catch (err) {
      metrics.runTaskTook(tookSeconds());
      throw this.failure(spec, errorLabel(err), errorText(err), err);
    }
    metrics.runTaskTook(tookSeconds());

    const task = output.tasks?.[0];
    const failure = output.failures?.[0];
    if (failure || !task?.taskArn) {
      const label = reasonLabel(failure?.reason);
      throw this.failure(spec, label, failureText(failure), undefined);
    }
    return task;
  }

  private failure(
    spec: BuildSpec,
    label: string,
    reason: string,
    cause: unknown,
  ): EcsFailureError {
    this.options.metrics.runTaskFailed(label);

    const error = new EcsFailureError(reason, spec.buildId, { cause });
    this.options.logger.warn(
      { buildId: spec.buildId, reason: error.reason, label },
      "ecs run task failed",
    );
    return error;
  }

  private async describe(
    taskArns: readonly string[],
  ): Promise<Map<string, BuildObservation>> {
    const output = await this.client.send(
      new DescribeTasksCommand({
        cluster: this.options.ecs.cluster,
        tasks: [...taskArns],
      }),
    );

    const found = new Map<string, BuildObservation>();
    for (const task of output.tasks ?? []) {
      if (task.taskArn) found.set(task.taskArn, this.toObservation(task));
    }
    return found;
  }

  private toObservation(task: Task): BuildObservation {
    const startedAt = task.startedAt?.getTime();

    switch (task.lastStatus) {
      case "STOPPED": {
        const container = task.containers?.find(
          (c) => c.name === this.options.ecs.containerName,
        );
        return {
          status: "ended",
          startedAt,
          endedAt: task.stoppedAt?.getTime() ?? Date.now(),
          exitCode: container?.exitCode ?? null,
        };
      }
      case "RUNNING":
      case "DEACTIVATING":
      case "STOPPING":
      case "DEPROVISIONING":
        return { status: "running", startedAt: startedAt ?? Date.now() };
      default:
        return { status: "queued" };
    }
  }

  private sweep(): void {
    if (this.sweeping || this.tracked.size === 0) return;

    this.sweeping = this.sweepTracked().finally(() => {
      this.sweeping = undefined;
    });
  }

  private async sweepTracked(): Promise<void> {
    const entries = [...this.tracked.entries()];

    for (let i = 0; i < entries.length; i += DESCRIBE_BATCH) {
      const batch = entries.slice(i, i + DESCRIBE_BATCH);
      let found: Map<string, BuildObservation>;
      try {
        found = await this.describe(batch.map(([, t]) => t.taskArn));
      } catch (err) {
        this.options.logger.warn({ err }, "ecs describe failed");
        return;
      }

      for (const [buildId, task] of batch) {
        const seen =
          found.get(task.taskArn) ?? missingObservation(task.launchedAt);
        if (seen) this.apply(buildId, task, seen);
      }
    }
  }

  /** Turns a tracked task's new look into events, each at most once. */
  private apply(
    buildId: BuildId,
    task: TrackedTask,
    seen: BuildObservation,
  ): void {
    const { events } = this.options;

    if (seen.status !== "queued" && task.status === "queued") {
      task.status = "running";
      events.started(buildId, seen.startedAt ?? Date.now());
    }
    if (seen.status === "ended") {
      this.tracked.delete(buildId);
      events.ended(buildId, seen.exitCode ?? null, seen.endedAt ?? Date.now());
    }
  }
}

/**
 * What a task ECS does not know means. ECS forgets a stopped task after
 * about an hour, so one long unknown has ended, with no exit code to tell;
 * one launched moment ago may just not be visible yet.
 */
function missingObservation(launchedAt: number): BuildObservation | undefined {
  if (Date.now() - launchedAt < MISSING_GRACE_MS) return undefined;
  return { status: "ended", endedAt: Date.now(), exitCode: null };
}

export function reasonLabel(reason: string | undefined): string {
  const known = KNOWN_FAILURE_REASONS.find((r) => r === reason);
  return known ?? "other";
}

function failureText(failure: Failure | undefined): string {
  if (!failure) return "RunTask answered without a task";

  const reason = failure.reason ?? "unknown";
  return failure.detail ? `${reason} (${failure.detail})` : reason;
}

/** `api_client` / `api_server` when AWS answered, else `unreachable`. */
function errorLabel(err: unknown): string {
  const fault = (err as { $fault?: unknown } | null)?.$fault;
  if (fault === "client" || fault === "server") return `api_${fault}`;
  return "unreachable";
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);

  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata
    ?.httpStatusCode;
  const prefix = status ? `${err.name} (HTTP ${status})` : err.name;
  return err.message ? `${prefix}: ${err.message}` : prefix;
}
